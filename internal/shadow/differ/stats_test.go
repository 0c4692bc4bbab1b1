package differ

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestEvidence(t *testing.T) {
	// Closed form against numeric integration of the mixture.
	integrate := func(b, c int) float64 {
		const steps = 200000
		var s float64
		for i := range steps {
			th := 0.5 + (float64(i)+0.5)/steps*0.5
			s += math.Pow(2*th, float64(b)) * math.Pow(2*(1-th), float64(c))
		}
		return s / steps // π = 2 on [1/2,1], dθ = 0.5/steps
	}
	for _, bc := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {5, 0}, {13, 0}, {10, 10}, {11, 10}, {30, 12}, {3, 40}, {200, 150}, {120, 80}} {
		got := math.Exp(evidence(bc[0], bc[1]))
		want := integrate(bc[0], bc[1])
		if bc[0] <= bc[1] {
			// Reported as no evidence (E = 1); the true value is at most 1.
			if got != 1 || want > 1+1e-9 {
				t.Errorf("evidence(%d, %d) = %g (integral %g), want 1 and an integral ≤ 1", bc[0], bc[1], got, want)
			}
			continue
		}
		if math.Abs(got-want) > 1e-4*math.Max(1, want) {
			t.Errorf("evidence(%d, %d) = %g, want %g", bc[0], bc[1], got, want)
		}
	}
	if e := evidence(13, 0); e < math.Log(10/0.01) {
		t.Errorf("13 candidate-only diffs give E = %g, want ≥ 1000", math.Exp(e))
	}
}

// TestEvidenceFalseAlarms runs the sequential test under the null many
// times and checks that crossing 1/α at any look happens at most about α of
// the time (Ville's inequality).
func TestEvidenceFalseAlarms(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const runs, looks, alpha = 400, 400, 0.05
	alarms := 0
	for range runs {
		b, c := 0, 0
		for range looks {
			if rng.IntN(2) == 0 {
				b++
			} else {
				c++
			}
			if evidence(b, c) >= math.Log(1/alpha) {
				alarms++
				break
			}
		}
	}
	if rate := float64(alarms) / runs; rate > 2*alpha {
		t.Errorf("false alarm rate over %d looks = %.3f, want ≤ about %.2f", looks, rate, alpha)
	}
}

func TestLogBinomCDFHalf(t *testing.T) {
	exact := func(n, k int) float64 { // direct sum in log space
		var terms []float64
		for i := 0; i <= k; i++ {
			terms = append(terms, lgamma(n+1)-lgamma(i+1)-lgamma(n-i+1)-float64(n)*math.Ln2)
		}
		m := math.Inf(-1)
		for _, x := range terms {
			m = math.Max(m, x)
		}
		var s float64
		for _, x := range terms {
			s += math.Exp(x - m)
		}
		return m + math.Log(s)
	}
	for _, nk := range [][2]int{{1, 0}, {10, 3}, {10, 5}, {11, 5}, {11, 6}, {100, 70}, {1001, 480}, {1001, 520}, {5000, 2600}, {20000, 100}} {
		got, want := logBinomCDFHalf(nk[0], nk[1]), exact(nk[0], nk[1])
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("logBinomCDFHalf(%d, %d) = %g, want %g", nk[0], nk[1], got, want)
		}
	}
}

func TestNeededAndBound(t *testing.T) {
	tests := []struct {
		target float64
		want   int
	}{{0.01, 299}, {0.1, 29}, {0.001, 2995}}
	for _, tt := range tests {
		if got := Needed(tt.target, 0.95); got != tt.want {
			t.Errorf("Needed(%g) = %d, want %d", tt.target, got, tt.want)
		}
		if b := upperBound(tt.want, 0.95); b > tt.target {
			t.Errorf("upperBound(%d) = %g, above target %g", tt.want, b, tt.target)
		}
		if b := upperBound(tt.want-1, 0.95); b <= tt.target {
			t.Errorf("upperBound(%d) = %g, already below target %g", tt.want-1, b, tt.target)
		}
	}
	if b := upperBound(300, 0.95); math.Abs(b-3.0/300) > 0.0005 {
		t.Errorf("upperBound(300) = %g, want about 3/300 (rule of three)", b)
	}
}
