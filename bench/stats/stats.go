// Package stats holds the benchmark's arithmetic: the median, minimum and
// maximum of a figure over its runs, and the straight line through the
// scale points. Pure functions, no I/O.
package stats

import (
	"errors"
	"math"
	"slices"
)

// Summary is one figure over its runs. N counts the runs that produced a
// value: a run whose measurement failed is left out, never zeroed, so N
// below the runs asked for means some failed.
type Summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// Summarize is the median, minimum and maximum of xs; ok is false when xs
// is empty (no run measured it). An even count takes the mean of the two
// middle values, as the median is usually defined.
func Summarize(xs []float64) (s Summary, ok bool) {
	if len(xs) == 0 {
		return Summary{}, false
	}
	v := slices.Clone(xs)
	slices.Sort(v)
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return Summary{Median: med, Min: v[0], Max: v[n-1], N: n}, true
}

// Fit is the least-squares line y = Intercept + Slope*x and how well it
// explains the points (R2, 1 for a perfect line).
type Fit struct {
	Slope     float64 `json:"slope"`
	Intercept float64 `json:"intercept"`
	R2        float64 `json:"r2"`
}

// LinearFit fits a line through the points (x[i], y[i]). It needs two
// points with different x; R2 is 1 when every y is the same (the line
// explains all of no variation).
func LinearFit(x, y []float64) (Fit, error) {
	if len(x) != len(y) {
		return Fit{}, errors.New("linear fit: x and y differ in length")
	}
	n := float64(len(x))
	if len(x) < 2 {
		return Fit{}, errors.New("linear fit: fewer than two points")
	}
	var sx, sy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
	}
	mx, my := sx/n, sy/n
	var sxx, sxy, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxx += dx * dx
		sxy += dx * dy
		syy += dy * dy
	}
	if sxx == 0 {
		return Fit{}, errors.New("linear fit: every point has the same x")
	}
	f := Fit{Slope: sxy / sxx}
	f.Intercept = my - f.Slope*mx
	if syy == 0 {
		f.R2 = 1
		return f, nil
	}
	var ssr float64
	for i := range x {
		r := y[i] - (f.Intercept + f.Slope*x[i])
		ssr += r * r
	}
	f.R2 = 1 - ssr/syy
	if math.IsNaN(f.R2) {
		return Fit{}, errors.New("linear fit: R2 is not a number")
	}
	return f, nil
}
