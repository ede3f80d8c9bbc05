"""Example row-wise UDFs: `make serve` loads every module in this directory."""

import re
import unicodedata
from typing import Optional

from fletch import udf


@udf(volatility="immutable")
def slugify(title: str) -> str:
    """Lower-case ASCII words joined by dashes: "Héllo, World!" -> "hello-world"."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


@udf(volatility="immutable")
def word_count(text: Optional[str]) -> int:
    """Words in text; a null text has none."""
    return 0 if text is None else len(text.split())
