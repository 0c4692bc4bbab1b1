package shadow

import (
	"fmt"

	"github.com/graftdev/graft/internal/shadow/differ"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the shadow's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	mirroredC, comparedC, droppedC, laneErrorsC prometheus.Counter
	divergentG, runningG                        prometheus.Gauge
}

// NewMetrics registers the shadow's metrics on reg:
// graft_shadow_mirrored_total, graft_shadow_compared_total,
// graft_shadow_dropped_total, graft_shadow_lane_errors_total,
// graft_shadow_divergent_fields and graft_shadow_running.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		mirroredC:   prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_shadow_mirrored_total", Help: "Primary exchanges queued for mirroring to the shadow lanes."}),
		comparedC:   prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_shadow_compared_total", Help: "Requests whose primary, secondary and candidate answers were compared."}),
		droppedC:    prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_shadow_dropped_total", Help: "Exchanges not mirrored because the shadow queue was full."}),
		laneErrorsC: prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_shadow_lane_errors_total", Help: "Mirrored requests the secondary lane failed to answer."}),
		divergentG:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "graft_shadow_divergent_fields", Help: "Fields whose candidate differences are significantly above their noise, in the current or last run."}),
		runningG:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "graft_shadow_running", Help: "1 while a shadow run mirrors traffic."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.mirroredC, m.comparedC, m.droppedC, m.laneErrorsC, m.divergentG, m.runningG} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register shadow metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *Metrics) mirrored() {
	if m != nil {
		m.mirroredC.Inc()
	}
}

func (m *Metrics) compared() {
	if m != nil {
		m.comparedC.Inc()
	}
}

func (m *Metrics) dropped() {
	if m != nil {
		m.droppedC.Inc()
	}
}

func (m *Metrics) laneError() {
	if m != nil {
		m.laneErrorsC.Inc()
	}
}

func (m *Metrics) setRunning(on bool) {
	if m != nil {
		v := 0.0
		if on {
			v = 1
		}
		m.runningG.Set(v)
	}
}

func (m *Metrics) setDivergent(j differ.Judgement) {
	if m == nil {
		return
	}
	n := 0
	for _, r := range j.Routes {
		for _, f := range r.Fields {
			if f.Divergent {
				n++
			}
		}
	}
	m.divergentG.Set(float64(n))
}
