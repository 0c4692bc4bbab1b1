package proxy

// Compose merges hook sets owned by different features (self-healing's
// Inspect and Observe, shadowing's Observe) into the one set the proxy takes:
// each Inspect runs in order and the first answer wins; every Observe runs.
// A hook that only one set has is used as it is, without a wrapper.
func Compose(hs ...Hooks) Hooks {
	var out Hooks
	var inspects []func(*Request) *Answer
	var observes []func(*Request, *Response)
	for _, h := range hs {
		if h.Inspect != nil {
			inspects = append(inspects, h.Inspect)
		}
		if h.Observe != nil {
			observes = append(observes, h.Observe)
		}
		out.InspectBody = out.InspectBody || h.InspectBody
		out.ObserveResponse = out.ObserveResponse || h.ObserveResponse
	}
	switch len(inspects) {
	case 0:
	case 1:
		out.Inspect = inspects[0]
	default:
		out.Inspect = func(r *Request) *Answer {
			for _, f := range inspects {
				if a := f(r); a != nil {
					return a
				}
			}
			return nil
		}
	}
	switch len(observes) {
	case 0:
	case 1:
		out.Observe = observes[0]
	default:
		out.Observe = func(r *Request, resp *Response) {
			for _, f := range observes {
				f(r, resp)
			}
		}
	}
	return out
}
