package load

import (
	"math"
	"slices"
	"time"
)

// maxErrorSamples is how many distinct error messages a Result keeps.
const maxErrorSamples = 5

// Result is what a Pool saw during one Run.
type Result struct {
	// Requests counts the requests answered with a result.
	Requests int64 `json:"requests"`
	// Errors counts the requests that failed, in any way.
	Errors int64 `json:"errors"`
	// ErrorSamples are up to five distinct error messages, each with how
	// often it occurred.
	ErrorSamples map[string]int64 `json:"error_samples,omitempty"`
	// Elapsed is the wall time of the run.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Latency summarizes the successful requests' latencies.
	Latency Latency `json:"latency"`
}

// Throughput returns the successful requests per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Latency is a latency distribution's summary.
type Latency struct {
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
}

// recorder collects one session's samples, so that sessions never share
// a lock on the hot path.
type recorder struct {
	lat    []time.Duration
	errors int64
	errs   map[string]int64
}

// newRecorder returns a recorder with room for the samples of a session
// that sends one request per millisecond for d (a loaded server's pace),
// so that it seldom grows, up to 64 KiB.
func newRecorder(d time.Duration) *recorder {
	return &recorder{lat: make([]time.Duration, 0, min(int(d/time.Millisecond), 8<<10))}
}

// add records one request: its latency when err is nil, else the error.
func (r *recorder) add(d time.Duration, err error) {
	if err == nil {
		r.lat = append(r.lat, d)
		return
	}
	r.errors++
	msg := err.Error()
	if _, ok := r.errs[msg]; ok || len(r.errs) < maxErrorSamples {
		if r.errs == nil {
			r.errs = make(map[string]int64)
		}
		r.errs[msg]++
	}
}

// merge combines the sessions' recorders into one Result.
func merge(recs []*recorder, elapsed time.Duration) Result {
	res := Result{Elapsed: elapsed}
	var all []time.Duration
	for _, r := range recs {
		all = append(all, r.lat...)
		res.Errors += r.errors
		for msg, n := range r.errs {
			if _, ok := res.ErrorSamples[msg]; ok || len(res.ErrorSamples) < maxErrorSamples {
				if res.ErrorSamples == nil {
					res.ErrorSamples = make(map[string]int64)
				}
				res.ErrorSamples[msg] += n
			}
		}
	}
	res.Requests = int64(len(all))
	res.Latency = summarize(all)
	return res
}

// summarize sorts samples and reads its percentiles by the nearest-rank
// method.
func summarize(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	return Latency{
		Mean: sum / time.Duration(len(samples)),
		P50:  rank(samples, 0.50),
		P90:  rank(samples, 0.90),
		P99:  rank(samples, 0.99),
		Max:  samples[len(samples)-1],
	}
}

// rank returns the q-quantile of sorted samples by nearest rank.
func rank(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
