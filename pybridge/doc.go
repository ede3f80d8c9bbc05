// Package pybridge runs Python UDFs in a pool of long-lived worker
// processes. The interpreter is either the CPython embedded in the fletch
// binary (with a bundled pyarrow), extracted once into a state directory,
// or an interpreter or venv the user names.
//
// Workers follow hashicorp/go-plugin's lifecycle: a versioned handshake
// when they start, their stdout and stderr re-logged through hclog, and a
// graceful stop, a bounded wait, a kill and a join when they end. The
// server and a worker exchange frames (see frame.go) that carry Arrow IPC
// streams as opaque bytes; this package imports no other fletch package.
package pybridge
