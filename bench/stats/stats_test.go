package stats

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []float64
		want Summary
		ok   bool
	}{
		{"none", nil, Summary{}, false},
		{"one", []float64{4}, Summary{4, 4, 4, 1}, true},
		{"odd, unsorted", []float64{9, 1, 5}, Summary{5, 1, 9, 3}, true},
		{"even: mean of the middle two", []float64{4, 1, 3, 10}, Summary{3.5, 1, 10, 4}, true},
	} {
		got, ok := Summarize(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: Summarize(%v) = %+v, %v; want %+v, %v", tc.name, tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSummarizeLeavesInputAlone(t *testing.T) {
	t.Parallel()
	in := []float64{3, 1, 2}
	Summarize(in)
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Errorf("Summarize sorted its input: %v", in)
	}
}

func TestLinearFit(t *testing.T) {
	t.Parallel()
	f, err := LinearFit([]float64{2, 3, 4, 5}, []float64{30, 50, 70, 90})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(f.Slope-20) > 1e-9 || math.Abs(f.Intercept+10) > 1e-9 || math.Abs(f.R2-1) > 1e-9 {
		t.Errorf("fit of a perfect line: %+v", f)
	}
	f, err = LinearFit([]float64{1, 2, 3, 4}, []float64{10, 10, 40, 40})
	if err != nil {
		t.Fatal(err)
	}
	if f.R2 >= 0.9 || f.R2 <= 0 {
		t.Errorf("a step is not a line: R2 %v", f.R2)
	}
	if _, err := LinearFit([]float64{1}, []float64{1}); err == nil {
		t.Error("one point: no error")
	}
	if _, err := LinearFit([]float64{2, 2}, []float64{1, 3}); err == nil {
		t.Error("same x: no error")
	}
	if f, err := LinearFit([]float64{1, 2}, []float64{5, 5}); err != nil || f.R2 != 1 || f.Slope != 0 {
		t.Errorf("flat line: %+v, %v", f, err)
	}
}
