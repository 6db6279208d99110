// Package plots draws the bench's PNGs with gonum's plot: bars (promote
// vs kubeadm, phases, failover per mode), the availability timeline and
// the scale line. Each function takes plain numbers and returns PNG
// bytes, so the figures can be drawn (and tested) without a lab.
package plots

import (
	"bytes"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// palette is the series' colours, in order.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

var (
	green = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	red   = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	grey  = color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff}
)

func render(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return nil, fmt.Errorf("rendering %q: %w", p.Title.Text, err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("rendering %q: %w", p.Title.Text, err)
	}
	return b.Bytes(), nil
}

// Series is one set of bars: a value per label, with an optional range
// (Lo, Hi, absolute) drawn as error bars when the chart has one series.
type Series struct {
	Name           string
	Values, Lo, Hi []float64
}

// Bars draws grouped bars, a group per label. Horizontal puts the labels
// on the Y axis (for long lists such as phases), first label at the top.
func Bars(title, unit string, labels []string, series []Series, horizontal bool) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	width := vg.Points(16)
	if len(series) == 1 {
		width = vg.Points(24)
	}
	// Horizontal bars go top-down in the labels' order.
	idx := func(i int) int { return i }
	if horizontal {
		idx = func(i int) int { return len(labels) - 1 - i }
	}
	for k, s := range series {
		if len(s.Values) != len(labels) {
			return nil, fmt.Errorf("%s: series %s has %d values for %d labels", title, s.Name, len(s.Values), len(labels))
		}
		vals := make(plotter.Values, len(labels))
		for i, v := range s.Values {
			vals[idx(i)] = v
		}
		b, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", title, err)
		}
		b.Color = palette[k%len(palette)]
		b.LineStyle.Width = 0
		b.Horizontal = horizontal
		b.Offset = vg.Length(float64(k)-float64(len(series)-1)/2) * width
		p.Add(b)
		if len(series) > 1 {
			p.Legend.Add(s.Name, b)
		}
		if len(series) == 1 && len(s.Lo) == len(labels) && len(s.Hi) == len(labels) {
			if err := addRanges(p, s, idx, horizontal); err != nil {
				return nil, fmt.Errorf("%s: %w", title, err)
			}
		}
	}
	ordered := make([]string, len(labels))
	for i, l := range labels {
		ordered[idx(i)] = l
	}
	h := vg.Points(300)
	if horizontal {
		p.NominalY(ordered...)
		p.X.Label.Text = unit
		p.X.Min = 0
		h = vg.Points(60 + 22*float64(len(labels)))
	} else {
		p.NominalX(ordered...)
		p.Y.Label.Text = unit
		p.Y.Min = 0
	}
	p.Legend.Top = true
	return render(p, vg.Points(640), h)
}

// errs are asymmetric error bars around each value.
type errs struct {
	plotter.XYs
	lo, hi []float64
}

func (e errs) YError(i int) (float64, float64) { return e.lo[i], e.hi[i] }
func (e errs) XError(i int) (float64, float64) { return e.lo[i], e.hi[i] }

func addRanges(p *plot.Plot, s Series, idx func(int) int, horizontal bool) error {
	e := errs{XYs: make(plotter.XYs, len(s.Values)), lo: make([]float64, len(s.Values)), hi: make([]float64, len(s.Values))}
	for i, v := range s.Values {
		j := idx(i)
		if horizontal {
			e.XYs[j] = plotter.XY{X: v, Y: float64(j)}
		} else {
			e.XYs[j] = plotter.XY{X: float64(j), Y: v}
		}
		e.lo[j], e.hi[j] = max(v-s.Lo[i], 0), max(s.Hi[i]-v, 0)
	}
	if horizontal {
		b, err := plotter.NewXErrorBars(e)
		if err != nil {
			return err
		}
		p.Add(b)
		return nil
	}
	b, err := plotter.NewYErrorBars(e)
	if err != nil {
		return err
	}
	p.Add(b)
	return nil
}

// Row is one line of the timeline: a target and operation, each request
// a point at its start (seconds), green when it succeeded.
type Row struct {
	Label string
	At    []float64
	OK    []bool
}

// Mark is a vertical line on the timeline: a phase beginning.
type Mark struct {
	At    float64
	Label string
}

// Timeline draws requests over time, a row per target and operation,
// failures in red, with the phases' starts as vertical lines.
func Timeline(title string, rows []Row, marks []Mark, end float64) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since promote started"
	var ok, bad plotter.XYs
	labels := make([]string, len(rows))
	for i, r := range rows {
		y := float64(len(rows) - 1 - i) // first row at the top
		labels[len(rows)-1-i] = r.Label
		for j, at := range r.At {
			if r.OK[j] {
				ok = append(ok, plotter.XY{X: at, Y: y})
			} else {
				bad = append(bad, plotter.XY{X: at, Y: y})
			}
		}
	}
	top := float64(len(rows)) - 0.3
	for i, m := range marks {
		l, err := plotter.NewLine(plotter.XYs{{X: m.At, Y: -0.5}, {X: m.At, Y: top}})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", title, err)
		}
		l.Color = grey
		l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(l)
		// Labels take turns at three heights: phases can be close.
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: m.At, Y: top + 0.3*float64(i%3)}}, Labels: []string{m.Label}})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", title, err)
		}
		for k := range lb.TextStyle {
			lb.TextStyle[k].Font.Size = vg.Points(7)
		}
		p.Add(lb)
	}
	for _, set := range []struct {
		xys   plotter.XYs
		c     color.Color
		shape draw.GlyphDrawer
		r     vg.Length
	}{{ok, green, draw.CircleGlyph{}, vg.Points(1.6)}, {bad, red, draw.CrossGlyph{}, vg.Points(3)}} {
		if len(set.xys) == 0 {
			continue
		}
		s, err := plotter.NewScatter(set.xys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", title, err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: set.c, Radius: set.r, Shape: set.shape}
		p.Add(s)
	}
	p.Title.Text += "\ngreen: success, red x: failure; dashed: a phase begins"
	p.NominalY(labels...)
	p.X.Min, p.X.Max = 0, end
	p.Y.Max = top + 0.9
	return render(p, vg.Points(900), vg.Points(120+26*float64(len(rows))))
}

// Point is a scale point: X masters, the median and range of Y.
type Point struct {
	X, Y, Lo, Hi float64
}

// Line draws points with their ranges and, when fit is set, the
// straight line y = fit[0] + fit[1]*x through them.
func Line(title, xlabel, ylabel string, pts []Point, fit *[2]float64) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	xys := make(plotter.XYs, len(pts))
	e := errs{XYs: xys, lo: make([]float64, len(pts)), hi: make([]float64, len(pts))}
	for i, pt := range pts {
		xys[i] = plotter.XY{X: pt.X, Y: pt.Y}
		e.lo[i], e.hi[i] = max(pt.Y-pt.Lo, 0), max(pt.Hi-pt.Y, 0)
	}
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", title, err)
	}
	l.Color, s.Color = palette[0], palette[0]
	p.Add(l, s)
	p.Legend.Add("median (min–max)", l, s)
	eb, err := plotter.NewYErrorBars(e)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", title, err)
	}
	p.Add(eb)
	if fit != nil && len(pts) > 0 {
		f := plotter.NewFunction(func(x float64) float64 { return fit[0] + fit[1]*x })
		f.Color = palette[1]
		f.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		f.XMin, f.XMax = pts[0].X, pts[len(pts)-1].X
		p.Add(f)
		p.Legend.Add(fmt.Sprintf("fit: %.1f s + %.1f s per master", fit[0], fit[1]), f)
	}
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	return render(p, vg.Points(640), vg.Points(360))
}
