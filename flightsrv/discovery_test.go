package flightsrv_test

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-udf/fletch/exec"
)

type udfMeta struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Language string `json:"language"`
	Params   []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Nullable bool   `json:"nullable"`
	} `json:"params"`
	Return struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Nullable bool   `json:"nullable"`
	} `json:"return"`
	Doc     string `json:"doc"`
	Version string `json:"version"`
}

func TestGetFlightInfo(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	tests := []struct {
		name       string
		wantSchema string // input fields, then the output field
		wantParams []string
	}{
		{"add_int64", "a:int64,b:int64,add_int64:int64", []string{"a int64", "b int64"}},
		{"upper", "s:utf8,upper:utf8", []string{"s utf8"}},
		{"coalesce_int64", "a:int64,b:int64,coalesce_int64:int64", []string{"a int64 null", "b int64 null"}},
		{"pi", "pi:float64", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := h.client.GetFlightInfo(context.Background(), path(tt.name))
			if err != nil {
				t.Fatalf("GetFlightInfo(%s): %v", tt.name, err)
			}
			schema, err := flight.DeserializeSchema(info.Schema, h.mem)
			if err != nil {
				t.Fatal(err)
			}
			if got := fieldsText(schema); got != tt.wantSchema {
				t.Errorf("schema = %s, want %s", got, tt.wantSchema)
			}
			if got, want := info.TotalRecords, int64(len(tt.wantParams)); got != want {
				t.Errorf("total_records = %d, want %d (the number of inputs)", got, want)
			}
			if got := info.FlightDescriptor.GetPath(); len(got) != 1 || got[0] != tt.name {
				t.Errorf("descriptor path = %q, want [%s]", got, tt.name)
			}
			var meta udfMeta
			if err := json.Unmarshal(info.AppMetadata, &meta); err != nil {
				t.Fatalf("app_metadata %s: %v", info.AppMetadata, err)
			}
			var params []string
			for _, p := range meta.Params {
				s := p.Name + " " + p.Type
				if p.Nullable {
					s += " null"
				}
				params = append(params, s)
			}
			if !slices.Equal(params, tt.wantParams) || meta.Name != tt.name || meta.Kind != "scalar" ||
				meta.Language != "go" || meta.Return.Name != tt.name || meta.Version == "" || meta.Doc == "" {
				t.Errorf("app_metadata = %s", info.AppMetadata)
			}

			sr, err := h.client.GetSchema(context.Background(), path(tt.name))
			if err != nil {
				t.Fatal(err)
			}
			s2, err := flight.DeserializeSchema(sr.Schema, h.mem)
			if err != nil {
				t.Fatal(err)
			}
			if !s2.Equal(schema) {
				t.Errorf("GetSchema = %s, want GetFlightInfo's %s", s2, schema)
			}
		})
	}
}

func TestListFlights(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	stream, err := h.client.ListFlights(context.Background(), &flight.Criteria{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for {
		info, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, info.FlightDescriptor.Path[0])
	}
	want := []string{"add_int64", "builtin_echo", "builtin_healthy", "coalesce_int64", "div_int64", "echo_int64", "echo_utf8", "multiply_float64", "pi", "upper"}
	if !slices.Equal(names, want) {
		t.Errorf("ListFlights = %q, want %q", names, want)
	}
}

func TestDiscoveryErrors(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	tests := []struct {
		name string
		desc *flight.FlightDescriptor
		code codes.Code
		msg  string
	}{
		{"unknown", path("ad_int64"), codes.NotFound, `function "ad_int64" not found; did you mean "add_int64"`},
		{"two elements", &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"a", "b"}}, codes.InvalidArgument, "descriptor path has 2 elements"},
		{"cmd", &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte("add_int64")}, codes.InvalidArgument, "descriptor type CMD is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.GetFlightInfo(context.Background(), tt.desc)
			checkStatus(t, err, tt.code, tt.msg)
			_, err = h.client.GetSchema(context.Background(), tt.desc)
			checkStatus(t, err, tt.code, tt.msg)
		})
	}
}

func TestActions(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	ctx := context.Background()

	body := doAction(t, h, "protocol_version")
	if len(body) != 1 || body[0] != 0x02 {
		t.Errorf("protocol_version = %x, want 02", body)
	}

	var list []udfMeta
	if err := json.Unmarshal(doAction(t, h, "list"), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != len(exec.Builtins()) || list[0].Name != "add_int64" || list[0].Params[1].Type != "int64" {
		t.Errorf("list = %+v", list)
	}

	if types := actionTypes(t, h); !slices.Equal(types, []string{"protocol_version", "list"}) {
		t.Errorf("ListActions = %q", types)
	}

	res, err := h.client.DoAction(ctx, &flight.Action{Type: "drop_everything"})
	if err == nil {
		_, err = res.Recv()
	}
	checkStatus(t, err, codes.Unimplemented, `unknown action "drop_everything"`)
}

func doAction(t *testing.T, h *harness, typ string) []byte {
	t.Helper()
	stream, err := h.client.DoAction(context.Background(), &flight.Action{Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatalf("DoAction(%s): %v", typ, err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Errorf("DoAction(%s) sent more than one result (err %v)", typ, err)
	}
	return res.Body
}

func checkStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st := status.Convert(err)
	if err == nil || st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Errorf("error = %v, want code %s with message containing %q", err, code, msg)
	}
}

func fieldsText(s *arrow.Schema) string {
	var out []byte
	for i, f := range s.Fields() {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, f.Name+":"+f.Type.String()...)
	}
	return string(out)
}
