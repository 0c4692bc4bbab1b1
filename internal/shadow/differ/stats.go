package differ

import "math"

// The divergence test (docs/shadow.md has the full argument).
//
// Each compared request gives, for each field, a pair of bits: did the
// candidate differ from the primary (D), did the secondary differ from the
// primary (N). The two comparisons share the primary's answer, so they are
// paired, and the test uses only the discordant pairs, as McNemar's does:
// b = requests with D and not N, c = requests with N and not D. If the
// candidate has no regression in the field it is exchangeable with the
// secondary, and each discordant pair is candidate-only with probability
// θ ≤ 1/2. A regression pushes θ above 1/2.
//
// The shadow looks at its evidence after every request and stops as soon as
// it is convinced, so a fixed-sample test (Fisher's, or McNemar's exact
// binomial p-value) would be wrong: looking again and again inflates its
// false alarms. The test is instead a test martingale:
//
//	E(b, c) = ∫ (2θ)^b (2(1-θ))^c π(θ) dθ,   π uniform on [1/2, 1]
//
// which under any θ ≤ 1/2 is a non-negative supermartingale with E ≤ 1, so
// by Ville's inequality P(sup over all looks of E ≥ 1/α) ≤ α. A field is
// divergent once E ≥ m/α, where m is the number of (route, field) pairs with
// any discordant pair (Bonferroni across fields). Closed form:
//
//	E = 2^(n+1) · B(b+1, c+1) · P(Binomial(n+1, 1/2) ≤ b),  n = b + c
//
// A field whose candidate always differs and whose secondary never does is
// divergent after about 13 requests at α = 0.01 with 10 fields.

// evidence returns log E(b, c).
func evidence(b, c int) float64 {
	n := b + c
	if n == 0 || b <= c {
		// With b ≤ c the integrand is at most 1 everywhere on [1/2, 1]:
		// E ≤ 1, no evidence at all.
		return 0
	}
	lbeta := lgamma(b+1) + lgamma(c+1) - lgamma(n+2)
	return float64(n+1)*math.Ln2 + lbeta + logBinomCDFHalf(n+1, b)
}

func lgamma(n int) float64 {
	v, _ := math.Lgamma(float64(n))
	return v
}

// logBinomCDFHalf returns log P(Binomial(n, 1/2) ≤ k). It sums the
// shorter tail from its largest term outwards and stops once the terms no
// longer matter, so it costs O(√n) rather than O(n): Judge runs it for
// every field after every few requests.
func logBinomCDFHalf(n, k int) float64 {
	if k >= n {
		return 0
	}
	if k < 0 {
		return math.Inf(-1)
	}
	if 2*k < n {
		return logTail(n, k, -1)
	}
	upper := math.Exp(logTail(n, k+1, +1))
	return math.Log1p(-math.Min(upper, 1))
}

// logTail returns log Σ C(n,i)/2^n for i = start, start+dir, … to the end
// of the range; the terms must shrink along dir.
func logTail(n, start, dir int) float64 {
	first := lgamma(n+1) - lgamma(start+1) - lgamma(n-start+1) - float64(n)*math.Ln2
	sum, t := 1.0, 1.0
	for i := start; ; i += dir {
		if dir > 0 {
			if i >= n {
				break
			}
			t *= float64(n-i) / float64(i+1)
		} else {
			if i <= 0 {
				break
			}
			t *= float64(i) / float64(n-i+1)
		}
		sum += t
		if t < sum*1e-17 {
			break
		}
	}
	return first + math.Log(sum)
}

// Needed returns the number of compared requests with no divergent
// answer that bounds the regression rate below target at the given
// confidence: the smallest n with (1-target)^n ≤ 1-confidence (the "rule of
// three": about 3/target at 95%).
func Needed(target, confidence float64) int {
	if target <= 0 || target >= 1 {
		return 1
	}
	return int(math.Ceil(math.Log(1-confidence) / math.Log(1-target)))
}

// upperBound is the one-sided upper confidence bound on a rate after zero
// events in n trials: 1 - (1-confidence)^(1/n).
func upperBound(n int, confidence float64) float64 {
	if n <= 0 {
		return 1
	}
	return 1 - math.Pow(1-confidence, 1/float64(n))
}
