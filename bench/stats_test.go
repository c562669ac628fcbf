package bench

import (
	"math"
	"slices"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in               []float64
		median, min, max float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
	} {
		in := slices.Clone(tc.in)
		s := Summarize(in)
		if s.Median != tc.median || s.Min != tc.min || s.Max != tc.max {
			t.Errorf("Summarize(%v) = %+v, want median %v min %v max %v", tc.in, s, tc.median, tc.min, tc.max)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("Summarize reordered its input: %v", in)
		}
	}
	if s := Summarize(nil); !math.IsNaN(s.Median) {
		t.Errorf("Summarize(nil).Median = %v, want NaN", s.Median)
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5}
	for _, tc := range []struct{ p, want float64 }{{50, 5}, {99, 10}, {100, 10}, {10, 1}, {1, 1}, {90, 9}} {
		if got := Percentile(v, tc.p); got != tc.want {
			t.Errorf("Percentile(1..10, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("Percentile(nil) is not NaN")
	}
}

func TestNiceScale(t *testing.T) {
	for _, tc := range []struct{ top, step, max float64 }{
		{6.84, 2, 8}, {0.05, 0.01, 0.05}, {306, 100, 400}, {13, 5, 15}, {1, 0.2, 1}, {0, 1, 1},
	} {
		step, m := niceScale(tc.top)
		if math.Abs(step-tc.step) > 1e-12 || math.Abs(m-tc.max) > 1e-9 {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", tc.top, step, m, tc.step, tc.max)
		}
	}
}

func TestFmtNum(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {306.4, "306"}, {37.94, "37.9"}, {6.843, "6.84"}, {0.0351, "0.035"}, {0.0042, "0.0042"}, {math.NaN(), "?"}} {
		if got := fmtNum(tc.v); got != tc.want {
			t.Errorf("fmtNum(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
