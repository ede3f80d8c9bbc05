package flightsrv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc/codes"

	"github.com/fletch-udf/fletch/flightsrv"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// recordingAdmin is an Admin that records its calls and answers with err.
type recordingAdmin struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (a *recordingAdmin) record(call string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, call)
	return a.err
}

func moduleUDF(name, module string) *udfcatalog.UDF {
	return &udfcatalog.UDF{Name: name, Kind: udfcatalog.KindScalar, Language: udfcatalog.LanguagePython,
		Result: arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Int64}, Module: module, Version: "v1"}
}

func (a *recordingAdmin) Register(_ context.Context, module string, source []byte, zip bool) ([]*udfcatalog.UDF, error) {
	if err := a.record(fmt.Sprintf("register %s %q zip=%v", module, source, zip)); err != nil {
		return nil, err
	}
	return []*udfcatalog.UDF{moduleUDF("f", module)}, nil
}

func (a *recordingAdmin) Unregister(_ context.Context, module string) error {
	return a.record("unregister " + module)
}

func (a *recordingAdmin) Reload(_ context.Context, module string) ([]*udfcatalog.UDF, error) {
	if err := a.record(fmt.Sprintf("reload %q", module)); err != nil {
		return nil, err
	}
	return nil, nil
}

func TestAdminActions(t *testing.T) {
	admin := &recordingAdmin{}
	h := newHarness(t, harnessConfig{opts: flightsrv.Options{Admin: admin}})
	off := newHarness(t, harnessConfig{})
	tests := []struct {
		name     string
		h        *harness
		typ      string
		body     string
		adminErr error
		call     string
		result   string
		code     codes.Code
		msg      string
	}{
		{name: "register source", h: h, typ: "register", body: `{"module":"m","source":"x = 1"}`,
			call: `register m "x = 1" zip=false`, result: `f@m`},
		{name: "register zip", h: h, typ: "register", body: `{"module":"m","zip":"UEsFBg=="}`,
			call: `register m "PK\x05\x06" zip=true`, result: `f@m`},
		{name: "unregister", h: h, typ: "unregister", body: `{"module":"m"}`, call: "unregister m", result: ""},
		{name: "reload all", h: h, typ: "reload", body: ``, call: `reload ""`, result: ""},
		{name: "reload all with an object", h: h, typ: "reload", body: `{}`, call: `reload ""`, result: ""},
		{name: "reload one", h: h, typ: "reload", body: `{"module":"m"}`, call: `reload "m"`, result: ""},
		{name: "disabled", h: off, typ: "register", body: `{"module":"m","source":"x"}`,
			code: codes.PermissionDenied, msg: "register: live registration is off on this server (start it with --live-registration)"},
		{name: "disabled reload", h: off, typ: "reload", code: codes.PermissionDenied, msg: "live registration is off"},
		{name: "not JSON", h: h, typ: "register", body: `m`, code: codes.InvalidArgument, msg: "the body must be a JSON object"},
		{name: "unknown field", h: h, typ: "unregister", body: `{"module":"m","force":true}`, code: codes.InvalidArgument, msg: `unknown field "force"`},
		{name: "no module", h: h, typ: "register", body: `{"source":"x"}`, code: codes.InvalidArgument, msg: "register: module is empty"},
		{name: "source and zip", h: h, typ: "register", body: `{"module":"m","source":"x","zip":"UEsFBg=="}`,
			code: codes.InvalidArgument, msg: "give exactly one of source and zip"},
		{name: "neither source nor zip", h: h, typ: "register", body: `{"module":"m"}`, code: codes.InvalidArgument, msg: "give exactly one"},
		{name: "bad base64", h: h, typ: "register", body: `{"module":"m","zip":"%%%"}`, code: codes.InvalidArgument, msg: "illegal base64"},
		{name: "import fails", h: h, typ: "register", body: `{"module":"m","source":"x"}`, call: `register m "x" zip=false`,
			adminErr: fmt.Errorf("%w: m: SyntaxError", udfcatalog.ErrModuleFailed), code: codes.InvalidArgument, msg: "module failed to import: m: SyntaxError"},
		{name: "taken", h: h, typ: "register", body: `{"module":"m","source":"x"}`, call: `register m "x" zip=false`,
			adminErr: fmt.Errorf("%w: m", udfcatalog.ErrDuplicate), code: codes.AlreadyExists, msg: "m"},
		{name: "unknown module", h: h, typ: "unregister", body: `{"module":"m"}`, call: "unregister m",
			adminErr: fmt.Errorf("%w: %q", udfcatalog.ErrModuleNotFound, "m"), code: codes.NotFound, msg: `module not found: "m"`},
		{name: "read-only module", h: h, typ: "unregister", body: `{"module":"m"}`, call: "unregister m",
			adminErr: fmt.Errorf("%w: m", udfcatalog.ErrModuleReadOnly), code: codes.FailedPrecondition, msg: "cannot be changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admin.mu.Lock()
			admin.calls, admin.err = nil, tt.adminErr
			admin.mu.Unlock()
			body, err := action(tt.h, tt.typ, tt.body)
			if tt.code != codes.OK {
				checkStatus(t, err, tt.code, tt.msg)
			} else if err != nil {
				t.Fatal(err)
			}
			var want []string
			if tt.call != "" {
				want = []string{tt.call}
			}
			if !slices.Equal(admin.calls, want) {
				t.Errorf("admin calls = %q, want %q", admin.calls, want)
			}
			if tt.code != codes.OK {
				return
			}
			var fns []struct{ Name, Module string }
			if err := json.Unmarshal(body, &fns); err != nil {
				t.Fatalf("result %s: %v", body, err)
			}
			got := ""
			for _, f := range fns {
				got += f.Name + "@" + f.Module
			}
			if got != tt.result {
				t.Errorf("result = %s, want %s", body, tt.result)
			}
		})
	}
	for _, tc := range []struct {
		h    *harness
		want []string
	}{
		{h, []string{"protocol_version", "list", "register", "unregister", "reload"}},
		{off, []string{"protocol_version", "list"}},
	} {
		if got := actionTypes(t, tc.h); !slices.Equal(got, tc.want) {
			t.Errorf("ListActions = %q, want %q", got, tc.want)
		}
	}
}

func action(h *harness, typ, body string) ([]byte, error) {
	stream, err := h.client.DoAction(context.Background(), &flight.Action{Type: typ, Body: []byte(body)})
	if err != nil {
		return nil, err
	}
	res, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	if _, err := stream.Recv(); err != io.EOF {
		return nil, fmt.Errorf("more than one result (%v)", err)
	}
	return res.Body, nil
}

func actionTypes(t *testing.T, h *harness) []string {
	t.Helper()
	stream, err := h.client.ListActions(context.Background(), &flight.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for {
		a, err := stream.Recv()
		if err == io.EOF {
			return types
		}
		if err != nil {
			t.Fatal(err)
		}
		if a.Description == "" {
			t.Errorf("action %s has no description", a.Type)
		}
		types = append(types, a.Type)
	}
}

// TestStaleVersionIsLookedUpAgain: an open that finds its version replaced
// since the lookup retries with a fresh lookup, a bounded number of times.
func TestStaleVersionIsLookedUpAgain(t *testing.T) {
	var mu sync.Mutex
	stale := 0
	h := newHarness(t, harnessConfig{openErr: func(*udfcatalog.UDF) error {
		mu.Lock()
		defer mu.Unlock()
		if stale > 0 {
			stale--
			return fmt.Errorf("%w: add_int64 version x", udfcatalog.ErrStale)
		}
		return nil
	}})
	for _, tt := range []struct {
		stale int
		code  codes.Code
	}{{0, codes.OK}, {1, codes.OK}, {4, codes.OK}, {5, codes.Unavailable}} {
		mu.Lock()
		stale = tt.stale
		mu.Unlock()
		err := addSequence(h, 0, 10)
		if tt.code == codes.OK {
			if err != nil {
				t.Errorf("%d stale opens: %v", tt.stale, err)
			}
			continue
		}
		checkStatus(t, err, tt.code, "function version no longer served")
	}
}
