package proxy

// Compose merges hook sets owned by different features (self-healing's
// Admit and Complete, shadowing's Observe) into the one set the proxy
// takes: each Inspect or Admit runs in order and the first answer wins;
// every Observe and Complete runs, in order. A hook that only one set has
// is used as it is, without a wrapper. When some set has an Admit
// (Complete), the merged set has only an Admit (Complete), the Inspects
// (Observes) of the others folded into it, so that the order holds.
func Compose(hs ...Hooks) Hooks {
	var out Hooks
	var inspects []func(*Request) *Answer
	var observes []func(*Request, *Response)
	var admits []func(*View) *Answer
	var completes []func(*View, *Response)
	lazyIn, lazyOut := false, false
	for _, h := range hs {
		lazyIn = lazyIn || h.Admit != nil
		lazyOut = lazyOut || h.Complete != nil
	}
	for _, h := range hs {
		if a := admitOf(h); lazyIn && a != nil {
			admits = append(admits, a)
		} else if h.Inspect != nil {
			inspects = append(inspects, h.Inspect)
		}
		if c := completeOf(h); lazyOut && c != nil {
			completes = append(completes, c)
		} else if h.Observe != nil {
			observes = append(observes, h.Observe)
		}
		out.InspectBody = out.InspectBody || h.InspectBody
		out.ObserveResponse = out.ObserveResponse || h.ObserveResponse
	}
	out.Inspect = firstAnswer(inspects)
	out.Admit = firstAnswer(admits)
	out.Observe = every(observes)
	out.Complete = every(completes)
	return out
}

// firstAnswer chains fs: each runs in order until one answers.
func firstAnswer[T any](fs []func(T) *Answer) func(T) *Answer {
	switch len(fs) {
	case 0:
		return nil
	case 1:
		return fs[0]
	}
	return func(r T) *Answer {
		for _, f := range fs {
			if a := f(r); a != nil {
				return a
			}
		}
		return nil
	}
}

// every chains fs: each runs, in order.
func every[T any](fs []func(T, *Response)) func(T, *Response) {
	switch len(fs) {
	case 0:
		return nil
	case 1:
		return fs[0]
	}
	return func(r T, resp *Response) {
		for _, f := range fs {
			f(r, resp)
		}
	}
}
