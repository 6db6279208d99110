package plots

import (
	"bytes"
	"image/png"
	"testing"
)

func isPNG(t *testing.T, name string, b []byte, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", name, err)
	}
	if r := img.Bounds(); r.Dx() < 100 || r.Dy() < 100 {
		t.Errorf("%s: %v is too small", name, r)
	}
}

func TestBars(t *testing.T) {
	t.Parallel()
	b, err := Bars("promote vs kubeadm", "seconds", []string{"run 1", "run 2"},
		[]Series{{Name: "promote", Values: []float64{60, 55}}, {Name: "kubeadm", Values: []float64{90, 80}}}, false)
	isPNG(t, "grouped", b, err)
	b, err = Bars("phases", "seconds", []string{"certs", "etcd", "lb"},
		[]Series{{Name: "median", Values: []float64{1, 30, 2}, Lo: []float64{0.8, 25, 1}, Hi: []float64{1.2, 36, 3}}}, true)
	isPNG(t, "horizontal with ranges", b, err)
	if _, err := Bars("bad", "s", []string{"a", "b"}, []Series{{Values: []float64{1}}}, false); err == nil {
		t.Error("a series shorter than the labels: no error")
	}
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	rows := []Row{
		{Label: "shaolin read", At: []float64{0, 0.1, 0.2, 0.3}, OK: []bool{true, true, false, true}},
		{Label: "endpoint write", At: []float64{0.2, 0.3}, OK: []bool{false, true}},
	}
	b, err := Timeline("availability", rows, []Mark{{At: 0.1, Label: "etcd"}, {At: 0.25, Label: "lb"}}, 0.4)
	isPNG(t, "timeline", b, err)
}

func TestLine(t *testing.T) {
	t.Parallel()
	b, err := Line("scale", "masters", "seconds", []Point{{1, 0, 0, 0}, {2, 30, 28, 33}, {3, 50, 49, 55}}, &[2]float64{10, 20})
	isPNG(t, "scale", b, err)
}
