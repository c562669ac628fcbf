package bench

import (
	"math"
	"slices"
)

// Summary condenses the samples of one metric (one per repetition) into the
// figures the report shows: the median and the spread (min–max).
type Summary struct {
	Samples []float64 `json:"samples"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
}

// Summarize returns the median, minimum and maximum of samples. With no
// samples every figure is NaN.
func Summarize(samples []float64) Summary {
	s := Summary{Samples: samples, Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	if len(samples) == 0 {
		return s
	}
	sorted := slices.Sorted(slices.Values(samples))
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	if n := len(sorted); n%2 == 1 {
		s.Median = sorted[n/2]
	} else {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return s
}

// Percentile returns the p-th percentile (0 < p <= 100) of values by the
// nearest-rank method: the smallest value with at least p % of the values at
// or below it. It is NaN for no values. values is not modified.
func Percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	sorted := slices.Sorted(slices.Values(values))
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
