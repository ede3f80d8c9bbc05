package pybridge

import (
	"bufio"
	"os"
	"time"
)

// transport moves frames between the server and one worker. Pipes are the
// only implementation so far; a shared-memory one will carry bodies
// without copying them through the kernel.
type transport interface {
	send(f frame) error
	receive(maxBody int64) (frame, error)
	// setDeadline bounds blocked sends and receives; a past time
	// interrupts them.
	setDeadline(t time.Time) error
	close() error
}

// pipeTransport speaks over two pipes: requests on the worker's fd 3,
// replies on its fd 4.
type pipeTransport struct {
	requests *os.File // our write end
	replies  *os.File // our read end
	reader   *bufio.Reader
}

func newPipeTransport(requests, replies *os.File) *pipeTransport {
	enlargePipe(requests)
	enlargePipe(replies)
	return &pipeTransport{requests: requests, replies: replies, reader: bufio.NewReaderSize(replies, 1<<16)}
}

func (t *pipeTransport) send(f frame) error { return writeFrame(t.requests, f) }

func (t *pipeTransport) receive(maxBody int64) (frame, error) { return readFrame(t.reader, maxBody) }

func (t *pipeTransport) setDeadline(d time.Time) error {
	if err := t.requests.SetWriteDeadline(d); err != nil {
		return err
	}
	return t.replies.SetReadDeadline(d)
}

// close closes the request pipe first: the worker sees end of input and
// exits on its own.
func (t *pipeTransport) close() error {
	err := t.requests.Close()
	if rerr := t.replies.Close(); err == nil {
		err = rerr
	}
	return err
}
