package pybridge

import (
	"bufio"
	"os"
	"sync"
	"time"
)

// channel carries frames between the server and one worker over two
// pipes: requests on the worker's fd 3, replies on its fd 4. Any goroutine
// may send; one reader goroutine receives.
type channel struct {
	requests *os.File // our write end
	replies  *os.File // our read end
	reader   *bufio.Reader
	sendMu   sync.Mutex
}

func newChannel(requests, replies *os.File) *channel {
	enlargePipe(requests)
	enlargePipe(replies)
	return &channel{requests: requests, replies: replies, reader: bufio.NewReaderSize(replies, 1<<16)}
}

// send writes frames in order, as one write when they are small. A
// worker that does not read blocks the write, at most until deadline (the
// zero time: no bound).
func (c *channel) send(deadline time.Time, frames ...frame) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if err := c.requests.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if len(frames) > 1 {
		var buf []byte
		for _, f := range frames {
			buf = appendFrame(buf, f)
		}
		_, err := c.requests.Write(buf)
		return err
	}
	return writeFrame(c.requests, frames[0])
}

// appendFrame appends a small frame's bytes to buf.
func appendFrame(buf []byte, f frame) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, framePrefixLen)...)
	f.putPrefix(buf[start:])
	return append(append(buf, f.header...), f.body...)
}

// receive reads the next frame; only the reader goroutine calls it.
func (c *channel) receive(maxBody int64) (frame, error) { return readFrame(c.reader, maxBody) }

// closeRequests ends the worker's input: it finishes what it has read
// and exits.
func (c *channel) closeRequests() error { return c.requests.Close() }

// close closes both pipes, which also ends a blocked receive.
func (c *channel) close() {
	c.requests.Close()
	c.replies.Close()
}
