// Package flightwire moves Arrow Flight FlightData messages through gRPC
// without copying their bodies.
//
// gRPC's default proto codec copies a received body twice (it joins the
// message's buffers, then protobuf copies data_body out of them) and a sent
// one twice more (arrow-go's SerializeBody into a bytes.Buffer, then
// proto.Marshal). Here a received Message's Body is a list of references
// to the buffers gRPC read the HTTP/2 DATA frames into, and a sent
// Message's Body is the Arrow buffers themselves. What remains is gRPC's
// own: the copy from its read buffer into frame buffers, and from the
// message into its 32 KiB write buffer.
//
// # Setup
//
// Build a Codec with NewCodec and install it on the server only, with
// grpc.ForceServerCodecV2 (Codec.ServerOption). It is named "proto" and
// passes every message that is not a *Message to gRPC's proto codec, so
// clients and every other method, health and reflection included, see no
// difference. DoExchange then calls RecvMsg(&m) and SendMsg(&m) on its
// stream instead of Recv and Send (see stream.go).
//
// # Receiving: who holds what, until when
//
// gRPC's server transport reads each HTTP/2 DATA frame (at most 16 KiB:
// grpc-go caps the frames it reads at that) into its own buffer, from its
// buffer pool when the frame is over 1 KiB. A message arrives as the list
// of those buffers, split where messages meet, and is handed to
// Codec.Unmarshal, after which gRPC frees its references.
//
//   - Unmarshal copies the descriptor, data_header and app_metadata (they
//     are small) and takes one reference to each buffer holding part of
//     data_body; Message.Body is those views. A body over ~16 KiB is
//     therefore always in several buffers: in the tests every 64 Ki-row
//     int64 batch (512 KiB) arrived in 33 buffers, every 64 Ki-row
//     (int64, utf8) one (1.1 MB) in 69 to 73 and every 1 Mi-row one in
//     about 1100. A body that fits in one frame usually arrives in one
//     buffer: grpc-go peers start each message in a new frame, but a
//     flow-control window can cut a frame short (one 1 Ki-row int64 body
//     of eight, 8 KiB each, in TestFrameBoundaries), and other peers may
//     pack messages into frames as they like. 1 Ki (int64, utf8) rows
//     (17.6 KB) take two buffers.
//   - The references last until Message.Free (or until the Message is
//     reused for another RecvMsg, which frees them first). Until then the
//     pool buffers are not reused; holding many messages holds that much
//     memory.
//   - Message.BodyBuffer (and IPCMessage, which uses it) turns the body
//     into an Arrow buffer. A body in one gRPC buffer is not copied: the
//     Arrow buffer takes its own reference to the gRPC buffer and frees it
//     when the Arrow buffer's reference count reaches zero, that is after
//     the IPC message and every array sliced from its body are released.
//     Such memory is not counted by an Arrow allocator. A body in several
//     buffers is copied once, into a buffer from the allocator passed in,
//     and the gRPC buffers can be freed right away with Message.Free.
//   - CopyBodyTo copies the body to memory of the caller's choice (a
//     shared-memory slot for a Python worker), and BodyBytes returns a body
//     held in one buffer without copying.
//
// # Sending: who holds what, until when
//
// Codec.Marshal returns a small buffer holding every field except the
// body's bytes (descriptor, header, app_metadata, the body's tag and
// length), followed by the body's buffers, each with a new reference.
// SendMsg frees the Marshal output when it returns, but the transport has
// taken its own references first: it writes the message later, from its
// connection writer goroutine, as flow control allows, and frees each
// buffer as it is written, possibly long after SendMsg (and the handler)
// returned. The Message keeps its own references until Free, so the
// caller may Free it right after SendMsg.
//
// Outgoing bodies are made with NewBody (any memory) or NewPayloadMessage
// (an Arrow IPC payload, no serialization). Each large slice becomes a
// gRPC buffer (mem.NewBuffer) whose pool is a release hook: gRPC returns a
// buffer to its pool exactly once, when its last reference is freed. When
// every buffer of a body has been returned, the release function runs:
// NewBody's release, or for a payload ipc.Payload.Release followed by
// done. Slices of at most 1 KiB, and the IPC padding, are copied instead,
// because gRPC does not reference-count buffers that small.
//
// gRPC v1.85.0 does not free every reference it takes: a message queued
// when the connection fails is dropped without a Free (TestReleaseOnConnectionLoss
// shows it), and so is one queued just after its stream was cleaned up.
// As a backstop each buffer's *[]byte handle carries a runtime cleanup
// that signals the release once the garbage collector finds it
// unreachable, which means no gRPC buffer can reach the data any more. A
// release may therefore run late (after a GC cycle) and on any goroutine;
// it runs exactly once either way.
package flightwire
