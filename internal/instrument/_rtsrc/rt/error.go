package rt

import (
	"fmt"
)

// Error is what a sealed point or a switched-on check site produces: the
// error returned by a function with an error result, or the value of the
// panic otherwise (converted into an error return by the nearest
// instrumented caller that has an error result, while checks are armed).
type Error struct {
	Kind   string // "sealed" or a site kind ("make", "index", ...)
	ID     string // point or site id
	Detail string // what the check saw, e.g. "index 12 out of range [0,4)"
}

func (e *Error) Error() string {
	if e.Kind == KindSealed {
		return fmt.Sprintf("graft: %s is sealed", e.ID)
	}
	return fmt.Sprintf("graft: check %s stopped %s", e.ID, e.Detail)
}

// KindSealed is Error.Kind for a sealed patch point.
const KindSealed = "sealed"

// Recover is deferred by instrumented functions with an error result while
// checks are armed: it turns a panic carrying *Error into that error in
// *err and lets every other panic continue.
func Recover(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if e, ok := r.(*Error); ok {
		*err = e
		recovered.Add(1)
		return
	}
	if e := siteError(r); e != nil {
		*err = e
		recovered.Add(1)
		return
	}
	panic(r)
}
