package supervisor

import (
	"errors"

	"github.com/graftdev/graft/api"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	metricUpgrades  *prometheus.CounterVec
	metricRollbacks prometheus.Counter
	metricRestarts  prometheus.Counter
	metricCrashes   prometheus.Counter
	metricStarts    prometheus.Counter
	metricCutovers  prometheus.Counter
}

func (s *Supervisor) initMetrics() {
	s.metricUpgrades = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "graft_upgrades_total", Help: "Upgrades by result (ok, failed, busy).",
	}, []string{"result"})
	s.metricRollbacks = prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_rollbacks_total", Help: "Rollbacks done, automatic and requested."})
	s.metricRestarts = prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_restarts_total", Help: "Restarts of a crashed serving generation."})
	s.metricCrashes = prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_crashes_total", Help: "Generations that died without being asked to."})
	s.metricStarts = prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_generations_started_total", Help: "Generations started."})
	s.metricCutovers = prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_cutovers_total", Help: "Times a generation began to serve."})
	s.reg.MustRegister(s.metricUpgrades, s.metricRollbacks, s.metricRestarts, s.metricCrashes, s.metricStarts, s.metricCutovers, stateCollector{s})
}

func (s *Supervisor) metricUpgrade(kind string, err error) {
	if kind == "rollback" {
		if err == nil {
			s.metricRollbacks.Inc()
		}
		return
	}
	switch {
	case err == nil:
		s.metricUpgrades.WithLabelValues("ok").Inc()
	case errors.Is(err, ErrBusy):
		s.metricUpgrades.WithLabelValues("busy").Inc()
	default:
		s.metricUpgrades.WithLabelValues("failed").Inc()
	}
}

func (s *Supervisor) metricCutover() { s.metricCutovers.Inc() }
func (s *Supervisor) metricCrash()   { s.metricCrashes.Inc() }

var (
	descGens     = prometheus.NewDesc("graft_generations", "Generations by state.", []string{"state"}, nil)
	descServing  = prometheus.NewDesc("graft_serving_generation", "Number of the serving generation (0: none).", nil, nil)
	descRequests = prometheus.NewDesc("graft_requests_total", "Requests received by the proxy (proxy mode).", nil, nil)
	descFailures = prometheus.NewDesc("graft_request_failures_total", "Requests the proxy answered 502/503 itself (proxy mode).", nil, nil)
	descRetries  = prometheus.NewDesc("graft_request_retries_total", "Requests the proxy sent a second time (proxy mode).", nil, nil)
)

// stateCollector reads generation states and proxy totals at scrape time.
type stateCollector struct{ s *Supervisor }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descGens
	ch <- descServing
	ch <- descRequests
	ch <- descFailures
	ch <- descRetries
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	counts := map[api.GenState]int{}
	s.mu.Lock()
	for _, g := range s.gens {
		counts[g.state]++
	}
	serving := 0
	if s.serving != nil {
		serving = s.serving.n
	}
	s.mu.Unlock()
	for _, st := range []api.GenState{api.GenStarting, api.GenReady, api.GenServing, api.GenParked, api.GenDraining, api.GenExited} {
		ch <- prometheus.MustNewConstMetric(descGens, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
	ch <- prometheus.MustNewConstMetric(descServing, prometheus.GaugeValue, float64(serving))
	if s.proxy != nil {
		ps := s.proxy.Stats()
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(ps.Requests))
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(ps.Failures))
		ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(ps.Retries))
	}
}
