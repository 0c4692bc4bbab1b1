package heal

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	installs     *prometheus.CounterVec
	hits         prometheus.Counter
	expired      prometheus.Counter
	removed      prometheus.Counter
	crashes      prometheus.Counter
	suspects     prometheus.Counter
	unattributed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, rules func() float64) *metrics {
	m := &metrics{
		installs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graft_seal_installs_total", Help: "Seal rules installed, by source (auto, manual).",
		}, []string{"source"}),
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_seal_hits_total", Help: "Requests answered by a seal rule without reaching the service.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_seal_expired_total", Help: "Seal rules removed because they expired.",
		}),
		removed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_seal_removed_total", Help: "Seal rules removed by hand.",
		}),
		crashes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_heal_crashes_total", Help: "Generation crashes seen by the healer.",
		}),
		suspects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_heal_suspects_total", Help: "Requests in flight to a generation when it crashed.",
		}),
		unattributed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_heal_unattributed_crashes_total", Help: "Crashes with no request in flight.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.installs, m.hits, m.expired, m.removed, m.crashes, m.suspects, m.unattributed,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "graft_seal_rules", Help: "Seal rules installed now."}, rules))
	}
	return m
}
