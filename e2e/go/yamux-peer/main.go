// Command yamux-peer is the Go side of wsfrp's yamux interop tests (e2e/test/go-yamux.interop.test.ts).
//
// It links the yamux and x/net/websocket packages Debian ships (golang-github-hashicorp-yamux-dev,
// golang-golang-x-net-dev), i.e. the same wire implementation frp uses, and serves one yamux *server*
// session per accepted connection: plain TCP, or a WebSocket at /~!frp sending text frames the way
// frp <= 0.69 does (-binary switches to binary frames like frp >= 0.70).
//
// Stdout is the test's event channel: one event per line, starting with "LISTEN <addr>". The line
// protocol spoken on the streams TypeScript opens is described in e2e/README.md and in handleStream.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/net/websocket"
)

// wsPath is frp's fixed WebSocket endpoint (FrpWebsocketPath).
const wsPath = "/~!frp"

// finWait bounds how long P mode waits for TypeScript to answer Go's FIN with its own FIN.
const finWait = 10 * time.Second

// events is the single writer of test-visible lines. log.Logger issues one Write per line, and
// writes below PIPE_BUF to a pipe are atomic, so lines from concurrent goroutines never interleave.
var events = log.New(os.Stdout, "", 0)

func emit(format string, args ...interface{}) {
	events.Printf(format, args...)
}

func main() {
	transport := flag.String("transport", "tcp", "tcp or ws")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	window := flag.Uint("window", 256*1024, "yamux MaxStreamWindowSize in bytes (frp >= 0.50 uses 6291456)")
	binaryFrames := flag.Bool("binary", false, "ws: send binary frames (frp >= 0.70) instead of text frames (frp <= 0.69)")
	keepAlive := flag.Duration("keepalive", 30*time.Second, "yamux keep-alive ping interval")
	stdinGuard := flag.Bool("exit-on-stdin-eof", false, "exit when stdin closes (the test runner died)")
	flag.Parse()

	if *stdinGuard {
		// A test runner killed without running its after hooks cannot stop us by PID; its end of our
		// stdin pipe closes with it, so that EOF is our cue not to linger as an orphan.
		go func() {
			io.Copy(io.Discard, os.Stdin)
			fmt.Fprintln(os.Stderr, "yamux-peer: stdin closed, exiting")
			os.Exit(0)
		}()
	}

	cfg := yamux.DefaultConfig()
	cfg.MaxStreamWindowSize = uint32(*window)
	cfg.KeepAliveInterval = *keepAlive
	// yamux's own complaints ("[ERR] yamux: ...") are evidence for bug reports, so they go to the
	// same line stream as the events, tagged so the test can tell them apart.
	cfg.LogOutput = nil
	cfg.Logger = log.New(os.Stdout, "YAMUX ", 0)
	if err := yamux.VerifyConfig(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "yamux-peer: bad config: %v\n", err)
		os.Exit(2)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "yamux-peer: listen: %v\n", err)
		os.Exit(1)
	}
	emit("LISTEN %s", ln.Addr().String())

	switch *transport {
	case "tcp":
		for {
			conn, err := ln.Accept()
			if err != nil {
				fmt.Fprintf(os.Stderr, "yamux-peer: accept: %v\n", err)
				os.Exit(1)
			}
			go serveSession(conn, conn.RemoteAddr().String(), cfg)
		}
	case "ws":
		mux := http.NewServeMux()
		// websocket.Handler (not websocket.Server) on purpose: like frps it rejects a handshake
		// without a valid Origin header with 403, which the TS dialer must cope with.
		mux.Handle(wsPath, websocket.Handler(func(ws *websocket.Conn) {
			if *binaryFrames {
				ws.PayloadType = websocket.BinaryFrame
			}
			// The handler must not return before the session ends: returning closes the socket.
			serveSession(ws, ws.Request().RemoteAddr, cfg)
		}))
		err := (&http.Server{Handler: mux}).Serve(ln)
		fmt.Fprintf(os.Stderr, "yamux-peer: http: %v\n", err)
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "yamux-peer: unknown -transport %q (want tcp or ws)\n", *transport)
		os.Exit(2)
	}
}

// serveSession runs one yamux server session over conn until it shuts down.
func serveSession(conn io.ReadWriteCloser, remote string, cfg *yamux.Config) {
	tap := newWireTap(conn)
	sess, err := yamux.Server(tap, cfg)
	if err != nil {
		emit("SESSION-ERR %s %v", remote, err)
		conn.Close()
		return
	}
	emit("SESSION open %s", remote)
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			break
		}
		go handleStream(sess, tap, st)
	}
	<-sess.CloseChan()
	emit("SESSION closed %s", remote)
}

// handleStream reads the command line ("<mode>[ <arg>...]\n") a TypeScript-opened stream starts with
// and runs that mode. Everything after the newline is the mode's payload.
func handleStream(sess *yamux.Session, tap *wireTap, st *yamux.Stream) {
	id := st.StreamID()
	br := bufio.NewReaderSize(st, 64*1024)
	line, err := br.ReadString('\n')
	if err != nil {
		emit("BADCMD %d err=%v", id, err)
		st.Close()
		return
	}
	args := strings.Fields(line)
	if len(args) == 0 {
		emit("BADCMD %d empty", id)
		st.Close()
		return
	}
	switch args[0] {
	case "E":
		modeEcho(st, br)
	case "S":
		modeSink(st, br)
	case "G":
		n, ok := intArgs(st, args, 1)
		if ok {
			modeGenerate(st, n[0])
		}
	case "P":
		kn, ok := intArgs(st, args, 2)
		if ok {
			modeGoOpens(sess, tap, st, int(kn[0]), kn[1])
		}
	case "R":
		modeReadUntilError(st, br)
	case "Z":
		modePing(sess, st)
	case "A":
		modeGoAway(sess, st)
	default:
		emit("BADCMD %d unknown mode %q", id, args[0])
		st.Close()
	}
}

func intArgs(st *yamux.Stream, args []string, want int) ([]int64, bool) {
	if len(args) != want+1 {
		emit("BADCMD %d %s wants %d arguments, got %q", st.StreamID(), args[0], want, args[1:])
		st.Close()
		return nil, false
	}
	out := make([]int64, want)
	for i := range out {
		v, err := strconv.ParseInt(args[i+1], 10, 64)
		if err != nil || v < 0 {
			emit("BADCMD %d %s argument %q", st.StreamID(), args[0], args[i+1])
			st.Close()
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// E: echo every byte until the peer's FIN, then FIN. Reading to EOF before Close also keeps us clear
// of the 2019 half-close bug (Read after a local Close returns a premature EOF).
func modeEcho(st *yamux.Stream, br *bufio.Reader) {
	n, err := io.Copy(st, br)
	if err != nil {
		emit("E %d n=%d err=%v", st.StreamID(), n, err)
		st.Close()
		return
	}
	st.Close()
	emit("E %d n=%d", st.StreamID(), n)
}

// S: count (and check against the pattern) everything up to the peer's FIN, reply
// "<count> <first mismatching offset or -1>\n", then FIN.
func modeSink(st *yamux.Stream, br *bufio.Reader) {
	count, mismatch, err := readPattern(br, -1)
	if err != nil {
		emit("S %d n=%d err=%v", st.StreamID(), count, err)
		st.Close()
		return
	}
	fmt.Fprintf(st, "%d %d\n", count, mismatch)
	st.Close()
	emit("S %d n=%d mismatch=%d", st.StreamID(), count, mismatch)
}

// G <n>: send n pattern bytes, then FIN.
func modeGenerate(st *yamux.Stream, n int64) {
	if err := writePattern(st, n); err != nil {
		emit("G %d n=%d err=%v", st.StreamID(), n, err)
		st.Close()
		return
	}
	st.Close()
	emit("G %d n=%d", st.StreamID(), n)
}

// P <k> <n>: Go opens k streams to the TS side (which must echo them), sends n pattern bytes on each
// and checks the full echo. Only then does it half-close, because the 2019 yamux Read would report a
// premature EOF after a local Close, and it proves on the wire that TS answers that FIN with a FIN.
// Replies "OK <k> <n>\n" or "FAIL <reason>\n" on the command stream.
func modeGoOpens(sess *yamux.Session, tap *wireTap, ctl *yamux.Stream, k int, n int64) {
	results := make(chan error, k)
	for i := 0; i < k; i++ {
		ps, err := sess.OpenStream()
		if err != nil {
			results <- fmt.Errorf("open #%d: %v", i, err)
			continue
		}
		go func() { results <- echoRoundTrip(tap, ps, n) }()
	}
	var failures []string
	for i := 0; i < k; i++ {
		if err := <-results; err != nil {
			failures = append(failures, err.Error())
		}
	}
	if len(failures) > 0 {
		reason := strings.Join(failures, "; ")
		emit("FAIL P %d %d %s", k, n, reason)
		fmt.Fprintf(ctl, "FAIL %s\n", reason)
	} else {
		emit("OK P %d %d", k, n)
		fmt.Fprintf(ctl, "OK %d %d\n", k, n)
	}
	ctl.Close()
}

func echoRoundTrip(tap *wireTap, ps *yamux.Stream, n int64) error {
	id := ps.StreamID()
	writeErr := make(chan error, 1)
	// Write and read concurrently: with n above the window, the echo must be drained while we send.
	go func() { writeErr <- writePattern(ps, n) }()
	got, mismatch, err := readPattern(ps, n)
	if werr := <-writeErr; werr != nil {
		ps.Close()
		return fmt.Errorf("stream %d: write: %v", id, werr)
	}
	if err != nil {
		ps.Close()
		return fmt.Errorf("stream %d: echo read after %d bytes: %v", id, got, err)
	}
	if mismatch >= 0 {
		ps.Close()
		return fmt.Errorf("stream %d: echo mismatch at offset %d", id, mismatch)
	}
	// TS may only FIN in reply to ours; an earlier FIN means it ended the stream on its own.
	if tap.sawFIN(id) {
		ps.Close()
		return fmt.Errorf("stream %d: peer sent FIN before Go did", id)
	}
	ps.Close()
	if !tap.waitFIN(id, finWait) {
		return fmt.Errorf("stream %d: no FIN from peer within %s after Go's FIN", id, finWait)
	}
	return nil
}

// R: announce readiness (so the test resets only once we are blocked in Read), then read until an
// error and log it; a TS reset shows up as "err=connection reset".
func modeReadUntilError(st *yamux.Stream, br *bufio.Reader) {
	id := st.StreamID()
	emit("R %d ready", id)
	buf := make([]byte, 32*1024)
	var n int64
	for {
		m, err := br.Read(buf)
		n += int64(m)
		if err != nil {
			emit("R %d n=%d err=%v", id, n, err)
			if errors.Is(err, io.EOF) {
				st.Close()
			}
			return
		}
	}
}

// Z: ping the TS side and reply "RTT <nanoseconds>\n" (or "ERR <reason>\n").
func modePing(sess *yamux.Session, st *yamux.Stream) {
	rtt, err := sess.Ping()
	if err != nil {
		emit("PING-FAIL err=%v", err)
		fmt.Fprintf(st, "ERR %v\n", err)
	} else {
		emit("PINGED rtt=%s", rtt)
		fmt.Fprintf(st, "RTT %d\n", rtt.Nanoseconds())
	}
	st.Close()
}

// A: send GoAway, then reply "GOAWAY\n". GoAway returns once the frame is written, so the reply
// reaches TS after the GoAway frame and the test can rely on that order.
func modeGoAway(sess *yamux.Session, st *yamux.Stream) {
	if err := sess.GoAway(); err != nil {
		emit("GOAWAY-FAIL err=%v", err)
		fmt.Fprintf(st, "ERR %v\n", err)
	} else {
		emit("GOAWAY sent")
		fmt.Fprintf(st, "GOAWAY\n")
	}
	st.Close()
}

// pattern is the test payload: byte i of a stream's data is (i*31+7) & 255. It repeats every 256
// bytes, so one precomputed block plus an offset serves any position.
var pattern = func() []byte {
	b := make([]byte, 64*1024+256)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return b
}()

const patternBlock = 64 * 1024

func writePattern(w io.Writer, n int64) error {
	var off int64
	for off < n {
		chunk := int64(patternBlock)
		if n-off < chunk {
			chunk = n - off
		}
		start := off % 256
		if _, err := w.Write(pattern[start : start+chunk]); err != nil {
			return err
		}
		off += chunk
	}
	return nil
}

// readPattern reads n bytes (or to EOF when n < 0) and returns how many it read and the first offset
// whose byte differs from the pattern (-1 if none). EOF before n bytes is an error.
func readPattern(r io.Reader, n int64) (int64, int64, error) {
	buf := make([]byte, patternBlock)
	var off int64
	mismatch := int64(-1)
	for n < 0 || off < n {
		want := int64(len(buf))
		if n >= 0 && n-off < want {
			want = n - off
		}
		m, err := r.Read(buf[:want])
		if m > 0 && mismatch < 0 {
			start := off % 256
			exp := pattern[start : start+int64(m)]
			for i := 0; i < m; i++ {
				if buf[i] != exp[i] {
					mismatch = off + int64(i)
					break
				}
			}
		}
		off += int64(m)
		if err == io.EOF && n < 0 {
			return off, mismatch, nil
		}
		if err != nil {
			return off, mismatch, err
		}
	}
	return off, mismatch, nil
}

// wireTap sits between the connection and the Go session and parses the yamux headers TS sends. The
// 2019 Stream API cannot tell whether the peer's FIN arrived once we closed locally (Read returns EOF
// either way), so P mode asks the tap instead. It also logs RST, Ping and GoAway frames as evidence.
type wireTap struct {
	conn io.ReadWriteCloser

	// parser state, touched only by the session's single reader goroutine
	hdr    [12]byte
	hdrLen int
	skip   uint32

	mu   sync.Mutex
	fins map[uint32]chan struct{}
	seen map[uint32]bool
}

func newWireTap(conn io.ReadWriteCloser) *wireTap {
	return &wireTap{conn: conn, fins: map[uint32]chan struct{}{}, seen: map[uint32]bool{}}
}

func (t *wireTap) Read(p []byte) (int, error) {
	n, err := t.conn.Read(p)
	if n > 0 {
		t.observe(p[:n])
	}
	return n, err
}

func (t *wireTap) Write(p []byte) (int, error) { return t.conn.Write(p) }
func (t *wireTap) Close() error                { return t.conn.Close() }

const (
	typeData         = 0
	typeWindowUpdate = 1
	typePing         = 2
	typeGoAway       = 3
	flagSYN          = 1
	flagFIN          = 4
	flagRST          = 8
)

func (t *wireTap) observe(b []byte) {
	for len(b) > 0 {
		if t.skip > 0 {
			k := t.skip
			if uint32(len(b)) < k {
				k = uint32(len(b))
			}
			b = b[k:]
			t.skip -= k
			continue
		}
		c := copy(t.hdr[t.hdrLen:], b)
		t.hdrLen += c
		b = b[c:]
		if t.hdrLen < len(t.hdr) {
			return
		}
		t.hdrLen = 0
		typ := t.hdr[1]
		flags := binary.BigEndian.Uint16(t.hdr[2:4])
		id := binary.BigEndian.Uint32(t.hdr[4:8])
		length := binary.BigEndian.Uint32(t.hdr[8:12])
		switch typ {
		case typeData, typeWindowUpdate:
			if typ == typeData {
				t.skip = length
			}
			if flags&flagFIN != 0 {
				t.markFIN(id)
			}
			if flags&flagRST != 0 {
				emit("RX RST %d", id)
			}
		case typePing:
			if flags&flagSYN != 0 {
				emit("RX PING %d", length)
			}
		case typeGoAway:
			emit("RX GOAWAY %d", length)
		}
	}
}

func (t *wireTap) chanFor(id uint32) chan struct{} {
	ch, ok := t.fins[id]
	if !ok {
		ch = make(chan struct{})
		t.fins[id] = ch
	}
	return ch
}

func (t *wireTap) markFIN(id uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.seen[id] {
		t.seen[id] = true
		close(t.chanFor(id))
	}
}

func (t *wireTap) sawFIN(id uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen[id]
}

func (t *wireTap) waitFIN(id uint32, d time.Duration) bool {
	t.mu.Lock()
	ch := t.chanFor(id)
	t.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	}
}
