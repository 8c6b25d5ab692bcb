package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/store"
)

// terminal says whether stdout (and stdin) are terminals. Output to anything
// else is plain lines with no control characters; tables are fitted to the
// width only on a terminal.
type terminal struct {
	out   *os.File // stdout when it is a terminal, else nil
	input bool     // stdin is a terminal too: a person can answer a question
}

func detectTerminal(stdin io.Reader, stdout io.Writer) terminal {
	var t terminal
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		t.out = f
	}
	if f, ok := stdin.(*os.File); ok && t.out != nil && term.IsTerminal(int(f.Fd())) {
		t.input = true
	}
	return t
}

// isTTY says whether stdout is a terminal.
func (t terminal) isTTY() bool { return t.out != nil }

// width is the terminal's width in columns (80 when unknown).
func (t terminal) width() int {
	if t.out != nil {
		if w, _, err := term.GetSize(int(t.out.Fd())); err == nil && w > 0 {
			return w
		}
	}
	return 80
}

// fitWriter cuts every line written through it to width runes, ending a cut
// line with "…", so a wide table does not wrap on a terminal. Lines must
// arrive whole (tabwriter's Flush writes whole lines).
type fitWriter struct {
	w     io.Writer
	width int
	buf   bytes.Buffer
}

func (f *fitWriter) Write(p []byte) (int, error) {
	f.buf.Write(p)
	for {
		i := bytes.IndexByte(f.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(f.buf.Next(i + 1))
		line = strings.TrimSuffix(line, "\n")
		if utf8.RuneCountInString(line) > f.width && f.width > 1 {
			r := []rune(line)
			line = string(r[:f.width-1]) + "…"
		}
		if _, err := io.WriteString(f.w, line+"\n"); err != nil {
			return 0, err
		}
	}
}

// progress is the one live line a pass shows on a terminal instead of a line
// per audit row: customers done of those planned, in flight, waiting for
// their orders to cancel, deletions, blocked, elapsed. It is rewritten in
// place with a carriage return and erase-line, and a ticker keeps its
// elapsed time moving while nothing happens.
type progress struct {
	w     io.Writer
	width int
	start time.Time
	now   func() time.Time

	mu        sync.Mutex
	planned   int
	state     map[string]string // customer → in_flight | waiting | done
	deleted   int
	blocked   int
	failed    int
	shown     bool
	stopTick  chan struct{}
	tickDone  chan struct{}
	suspended bool
}

func newProgress(w io.Writer, width int, now func() time.Time) *progress {
	return &progress{w: w, width: width, start: now(), now: now, state: map[string]string{}}
}

// startTicker redraws the line every second until stop.
func (p *progress) startTicker() {
	p.stopTick, p.tickDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.tickDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.stopTick:
				return
			case <-t.C:
				p.mu.Lock()
				p.drawLocked()
				p.mu.Unlock()
			}
		}
	}()
}

// plan adds an account's planned deletions and marks to the total.
func (p *progress) plan(items []engine.Item) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, it := range items {
		if it.Action == engine.ActionDelete || it.Action == engine.ActionMark {
			p.planned++
		}
	}
	p.drawLocked()
}

// event moves the customer of an audit row along.
func (p *progress) event(ev store.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := ev.Account + "/" + ev.CustomerID
	if ev.CustomerID != "" && p.state[id] != "done" {
		switch ev.Action {
		case store.ActionCancelOrder, store.ActionDelete, store.ActionResume:
			p.state[id] = "in_flight"
		case store.ActionPoll:
			p.state[id] = "waiting"
		}
		switch {
		case ev.Action == store.ActionDelete && (ev.Outcome == store.OutcomeOK || ev.Outcome == store.OutcomeAlreadyGone):
			p.state[id] = "done"
			p.deleted++
		case ev.Action == store.ActionBlock:
			p.state[id] = "done"
			p.blocked++
		case ev.Action == store.ActionFail:
			p.state[id] = "done"
			p.failed++
		case ev.Action == store.ActionMark && ev.Outcome == store.OutcomeOK:
			p.state[id] = "done"
		}
	}
	p.drawLocked()
}

func (p *progress) drawLocked() {
	if p.suspended {
		return
	}
	var done, flight, waiting int
	for _, s := range p.state {
		switch s {
		case "done":
			done++
		case "in_flight":
			flight++
		case "waiting":
			waiting++
		}
	}
	line := fmt.Sprintf("%d/%d done  %d in flight  %d waiting for cancellation  %d deleted  %d blocked  %d failed  %s",
		done, p.planned, flight, waiting, p.deleted, p.blocked, p.failed, p.now().Sub(p.start).Round(time.Second))
	// A line that wrapped could not be redrawn in place: cut it to the width.
	if r := []rune(line); p.width > 1 && len(r) >= p.width {
		line = string(r[:p.width-2]) + "…"
	}
	fmt.Fprint(p.w, "\r\x1b[K"+line)
	p.shown = true
}

// stop ends the live line, leaving it on screen as it last was.
func (p *progress) stop() {
	if p.stopTick != nil {
		close(p.stopTick)
		<-p.tickDone
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		p.drawLocked()
		fmt.Fprintln(p.w)
	}
	p.suspended = true
}

// confirm asks a person to type each account name of the plan before a live
// pass changes anything, as aws-nuke does. It returns false when any answer
// differs (or input ends).
func confirm(ctx context.Context, in io.Reader, out io.Writer, accounts []string) bool {
	r := bufio.NewReader(in)
	for _, a := range accounts {
		fmt.Fprintf(out, "this deletes customers of account %s and cannot be undone.\ntype the account name to go on: ", printable(a))
		answer := make(chan string, 1)
		go func() {
			line, _ := r.ReadString('\n')
			answer <- strings.TrimSpace(line)
		}()
		select {
		case <-ctx.Done():
			return false
		case got := <-answer:
			if got != a {
				return false
			}
		}
	}
	return true
}
