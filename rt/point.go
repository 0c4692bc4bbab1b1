package rt

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Bits of a patch point's word. Generated code tests the word at the top of
// the function; while it is zero (dormant) that test and one branch are all
// the point costs. Sealed and Patched are the two highest bits, so "sealed
// or patched" is one unsigned compare, w >= Sealed, which the compiler
// folds with the load into one instruction (a bit test is a load and a
// test).
const (
	Catch   uint32 = 1 << 0  // checks are armed: defer Recover (functions with an error result)
	Sites   uint32 = 1 << 1  // at least one check site of this function is on
	Sealed  uint32 = 1 << 30 // return zero values and *Error, or panic with *Error
	Patched uint32 = 1 << 31 // call the installed replacement instead of the body
)

// Point is the patch point of one instrumented function. The zero value is
// dormant; generated code declares one package-level Point per function and
// registers it in an init function.
type Point struct {
	// W is the word. Generated code reads it at entry with a plain load
	// (p.W >= Sealed: one compare with memory and a branch), in -race
	// builds with atomic.LoadUint32 (rewrite.Config.AtomicLoad). The plain
	// load is a benign race: a word-sized read observes some value
	// written, and it only decides whether to take the slow path, which
	// reads the replacement variable the same way (LoadSlot in -race
	// builds) and the word again atomically (Load).
	// Only rt writes it, with atomic.StoreUint32 under mu. It must stay
	// the first field.
	W uint32
	// slot is the address of the function's generated replacement
	// variable (var _graft_fN func(...) ...), which its slow path calls
	// when not nil: rt stores the installed replacement's func value
	// there with atomic.StorePointer, so the call needs no interface
	// assertion. fn is the same replacement as an interface, for
	// Install and Revert; both under mu.
	slot unsafe.Pointer
	fn   *any
	info *PointInfo
	// sealed and patched are kept apart from w so arming and disarming
	// checks never loses them.
	sealed, patched bool
	sitesOn         int
}

// PointInfo describes a point; generated code fills it at registration.
type PointInfo struct {
	ID       string       // import path + "." + function, as runtime frames name it: "example.com/m/p.(*T).M"
	Package  string       // import path
	Func     string       // "F", "T.M" or "(*T).M"
	File     string       // absolute file name of the original source
	Line     int          // line of the func keyword
	Type     reflect.Type // the replacement's type: a func with the receiver (if any) as first parameter
	ErrorRet bool         // the last result is an error
}

// Load returns the point's word (generated code loads W directly).
func (p *Point) Load() uint32 { return atomic.LoadUint32(&p.W) }

// LoadSlot loads a replacement variable atomically, for generated code in
// -race builds, where the plain read of the variable would be reported
// (rewrite.Config.AtomicLoad); slot is the variable's address.
func LoadSlot(slot Pointer) Pointer { return atomic.LoadPointer((*Pointer)(slot)) }

// setFn installs f (nil: none) as p's replacement; callers hold mu.
func (p *Point) setFn(f *any) {
	p.fn = f
	var fv unsafe.Pointer
	if f != nil {
		// A func value is pointer-shaped: an interface holds it in its
		// data word, which is what a variable of the func type holds.
		fv = (*[2]unsafe.Pointer)(unsafe.Pointer(f))[1]
	}
	atomic.StorePointer((*unsafe.Pointer)(p.slot), fv)
	p.patched = f != nil
	p.store()
}

// Err returns the error of a sealed point.
func (p *Point) Err() error {
	id := "?"
	if p.info != nil {
		id = p.info.ID
	}
	sealedCalls.Add(1)
	return &Error{Kind: KindSealed, ID: id, Detail: "sealed"}
}

// Info returns the point's description.
func (p *Point) Info() PointInfo { return *p.info }

var (
	mu       sync.Mutex // guards the registries and every Point's non-atomic fields
	points   = map[string]*Point{}
	armed    int // number of reasons to arm Catch: sealed points + sites on
	patches  = map[string]*Patch{}
	patchSeq int
	// envSealed holds GRAFT_SEALED ids whose points are not registered yet.
	envSealed = map[string]bool{}

	sealedCalls atomic.Int64
	recovered   atomic.Int64
)

// Register records p under info.ID; generated init functions call it with
// the address of the function's replacement variable (a func variable of
// exactly the replacement's type: info.Type is set from it). A point
// named in GRAFT_SEALED starts sealed.
func Register(p *Point, info PointInfo, slot any) {
	mu.Lock()
	defer mu.Unlock()
	if t := reflect.TypeOf(slot); t != nil && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Func {
		info.Type = t.Elem()
		p.slot = reflect.ValueOf(slot).UnsafePointer()
	}
	if _, dup := points[info.ID]; dup {
		// Two packages cannot produce the same id; a duplicate means the
		// same package was linked twice (plugins): keep the first.
		return
	}
	inf := info
	p.info = &inf
	points[info.ID] = p
	_, siteEnv := envSites[info.ID] // GRAFT_SITES may name points too: "on" seals
	if envSealed[info.ID] || siteEnv {
		delete(envSealed, info.ID)
		delete(envSites, info.ID)
		setSealedLocked(p, true)
	}
	p.store()
}

// store recomputes p's word from its fields; callers hold mu.
func (p *Point) store() {
	var w uint32
	if p.sealed {
		w |= Sealed
	}
	if p.patched {
		w |= Patched
	}
	if p.sitesOn > 0 {
		w |= Sites
	}
	if armed > 0 && p.info != nil && p.info.ErrorRet {
		w |= Catch
	}
	atomic.StoreUint32(&p.W, w)
}

// setArmedLocked changes the arm count and refreshes every word when it
// crosses zero.
func addArmedLocked(d int) {
	was := armed > 0
	armed += d
	if was != (armed > 0) {
		for _, p := range points {
			p.store()
		}
	}
}

func setSealedLocked(p *Point, on bool) bool {
	if p.sealed == on {
		return false
	}
	p.sealed = on
	if on {
		addArmedLocked(1)
	} else {
		addArmedLocked(-1)
	}
	p.store()
	return true
}

// ErrNoPoint is returned for an id that names no registered point.
var ErrNoPoint = errors.New("no such patch point")

// Seal seals (on) or unseals (off) the point id.
func Seal(id string, on bool) error {
	mu.Lock()
	defer mu.Unlock()
	p, ok := points[id]
	if !ok {
		return fmt.Errorf("seal %s: %w", id, ErrNoPoint)
	}
	setSealedLocked(p, on)
	return nil
}

// Lookup returns the point registered under id.
func Lookup(id string) (*Point, bool) {
	mu.Lock()
	defer mu.Unlock()
	p, ok := points[id]
	return p, ok
}

// PointState is one point as List reports it.
type PointState struct {
	PointInfo
	Sealed  bool
	Patched bool
}

// Points lists every registered point, sorted by id.
func Points() []PointState {
	mu.Lock()
	defer mu.Unlock()
	out := make([]PointState, 0, len(points))
	for _, p := range points {
		out = append(out, PointState{PointInfo: *p.info, Sealed: p.sealed, Patched: p.patched})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Patch is one installed set of replacements; Revert restores what each
// point ran before.
type Patch struct {
	ID    string
	Funcs []string // point ids, sorted
	prev  map[string]*any
	cur   map[string]*any
	done  bool
}

// Install replaces the bodies of several points at once: every id must name
// a registered point and every value must have exactly that point's Type,
// or nothing is installed. All slots are written under one lock, so no
// other Install, Revert or Seal interleaves; callers that need no call to
// observe a mix of old and new bodies must first reach a safe point (no
// affected function on any goroutine's stack), which is graft patch's job.
// id names the patch ("" picks one).
func Install(id string, fns map[string]any) (*Patch, error) {
	mu.Lock()
	defer mu.Unlock()
	if id == "" {
		patchSeq++
		id = fmt.Sprintf("p%d", patchSeq)
	}
	if _, dup := patches[id]; dup {
		return nil, fmt.Errorf("install %s: patch id already in use", id)
	}
	if len(fns) == 0 {
		return nil, fmt.Errorf("install %s: no functions", id)
	}
	ids := make([]string, 0, len(fns))
	for pid, f := range fns {
		p, ok := points[pid]
		if !ok {
			return nil, fmt.Errorf("install %s: %s: %w", id, pid, ErrNoPoint)
		}
		if f == nil {
			return nil, fmt.Errorf("install %s: %s: nil replacement", id, pid)
		}
		if p.slot == nil {
			return nil, fmt.Errorf("install %s: %s: the point has no replacement variable", id, pid)
		}
		if got, want := reflect.TypeOf(f), p.info.Type; got != want {
			return nil, fmt.Errorf("install %s: %s: replacement has type %v, point has %v", id, pid, got, want)
		}
		if reflect.ValueOf(f).IsNil() {
			return nil, fmt.Errorf("install %s: %s: nil replacement", id, pid)
		}
		ids = append(ids, pid)
	}
	sort.Strings(ids)
	pt := &Patch{ID: id, Funcs: ids, prev: map[string]*any{}, cur: map[string]*any{}}
	for _, pid := range ids {
		p := points[pid]
		pt.prev[pid] = p.fn
		f := fns[pid]
		pt.cur[pid] = &f
		p.setFn(&f)
	}
	patches[id] = pt
	return pt, nil
}

// Revert restores the bodies the patch replaced (the original bodies, or an
// earlier patch's).
func (pt *Patch) Revert() error { return Revert(pt.ID) }

// Revert restores the bodies that patch id replaced.
func Revert(id string) error {
	mu.Lock()
	defer mu.Unlock()
	pt, ok := patches[id]
	if !ok || pt.done {
		return fmt.Errorf("revert %s: no such patch", id)
	}
	for _, pid := range pt.Funcs {
		if points[pid].fn != pt.cur[pid] {
			return fmt.Errorf("revert %s: %s was patched again since; revert the later patch first", id, pid)
		}
	}
	for _, pid := range pt.Funcs {
		points[pid].setFn(pt.prev[pid])
	}
	pt.done = true
	delete(patches, id)
	return nil
}

// Patches lists the installed patches, sorted by id.
func Patches() []Patch {
	mu.Lock()
	defer mu.Unlock()
	out := make([]Patch, 0, len(patches))
	for _, pt := range patches {
		out = append(out, Patch{ID: pt.ID, Funcs: append([]string(nil), pt.Funcs...)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Pointer is unsafe.Pointer, for generated code that does not import
// unsafe.
type Pointer = unsafe.Pointer

// NoEscape returns p, hidden from escape analysis (like the runtime's own
// noescape). Generated slow paths pass a replacement's arguments through it
// so that the dynamic call does not move every pointer argument of every
// instrumented function to the heap. It round-trips the address through a
// uintptr variable in memory, with no call in between (it inlines), so the
// stack cannot move under it.
func NoEscape(p Pointer) Pointer {
	x := uintptr(p)
	return *(*Pointer)(unsafe.Pointer(&x))
}
