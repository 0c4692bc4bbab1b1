package shadow

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
	if n == 0 {
		return 0
	}
	lbeta := lgamma(b+1) + lgamma(c+1) - lgamma(n+2)
	return float64(n+1)*math.Ln2 + lbeta + logBinomCDFHalf(n+1, b)
}

func lgamma(n int) float64 {
	v, _ := math.Lgamma(float64(n))
	return v
}

// logBinomCDFHalf returns log P(Binomial(n, 1/2) ≤ k).
func logBinomCDFHalf(n, k int) float64 {
	if k >= n {
		return 0
	}
	if k < 0 {
		return math.Inf(-1)
	}
	// Sum the terms from the side with fewer of them, in log space.
	logTerm := func(i int) float64 {
		return lgamma(n+1) - lgamma(i+1) - lgamma(n-i+1) - float64(n)*math.Ln2
	}
	if k < n/2 {
		return logSumExp(0, k, logTerm)
	}
	// 1 - P(X ≥ k+1)
	upper := math.Exp(logSumExp(k+1, n, logTerm))
	return math.Log1p(-math.Min(upper, 1))
}

func logSumExp(lo, hi int, f func(int) float64) float64 {
	m := math.Inf(-1)
	for i := lo; i <= hi; i++ {
		m = math.Max(m, f(i))
	}
	if math.IsInf(m, -1) {
		return m
	}
	var s float64
	for i := lo; i <= hi; i++ {
		s += math.Exp(f(i) - m)
	}
	return m + math.Log(s)
}

// neededFor returns the number of compared requests with no divergent
// answer that bounds the regression rate below target at the given
// confidence: the smallest n with (1-target)^n ≤ 1-confidence (the "rule of
// three": about 3/target at 95%).
func neededFor(target, confidence float64) int {
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
