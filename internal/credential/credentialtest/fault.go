package credentialtest

import "sync"

// Fault makes calls of one method of a fake fail before they change anything: the first
// Skip calls pass, the next Times fail with Err (Times < 0: every call from then on).
type Fault struct {
	Skip  int
	Times int
	Err   error
}

// faults keeps the armed Fault of each method of a fake.
type faults struct {
	mu     sync.Mutex
	byCall map[string]*Fault
}

// inject arms f for call, replacing what was armed; the zero Fault disarms it.
func (fs *faults) inject(call string, f Fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.byCall == nil {
		fs.byCall = map[string]*Fault{}
	}
	if f.Times == 0 || f.Err == nil {
		delete(fs.byCall, call)
		return
	}
	fs.byCall[call] = &f
}

// take is the error the next call of call meets, nil for none.
func (fs *faults) take(call string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.byCall[call]
	switch {
	case f == nil:
		return nil
	case f.Skip > 0:
		f.Skip--
		return nil
	case f.Times > 0:
		f.Times--
		if f.Times == 0 {
			delete(fs.byCall, call)
		}
	}
	return f.Err
}

// left is how many failures of call are still to come (-1: every call).
func (fs *faults) left(call string) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.byCall[call]; f != nil {
		return f.Times
	}
	return 0
}
