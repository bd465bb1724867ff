package report

import (
	"fmt"
	"html/template"
	"strings"
)

// series is one named row of daily values in a chart.
type series struct {
	name, color string
	values      []int64
}

// Chart geometry, in SVG user units; the SVG scales to the page width.
const (
	chartW, chartH = 760, 220
	padLeft        = 52
	padRight       = 12
	padTop         = 14
	padBottom      = 40
	plotW          = chartW - padLeft - padRight
	plotH          = chartH - padTop - padBottom
	legendGap      = 130 // between legend entries
	maxXLabels     = 8   // day labels under the x axis
	barGap         = 0.2 // of a day's width, between bars
)

// Chart colours.
const (
	axisColor    = "#444"
	gridColor    = "#ddd"
	deletedColor = "#2b6cb0"
	failedColor  = "#dd6b20"
	backlogColor = "#4a5568"
	overdueColor = "#c53030"
)

// niceMax rounds m up to 1, 2 or 5 times a power of ten, at least 1.
func niceMax(m int64) int64 {
	if m < 1 {
		return 1
	}
	for p := int64(1); ; p *= 10 {
		for _, k := range []int64{1, 2, 5} {
			if k*p >= m {
				return k * p
			}
		}
	}
}

// chartFrame writes the axes, the grid, the y labels, the x labels and the legend, and returns
// the scale of one unit in y and the width of one day in x.
func chartFrame(b *strings.Builder, title string, days []string, top int64, legend []series) (yScale, dayW float64) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" class="chart">`,
		chartW, chartH, chartW, chartH, template.HTMLEscapeString(title))
	fmt.Fprintf(b, `<title>%s</title>`, template.HTMLEscapeString(title))
	yScale = float64(plotH) / float64(top)
	for _, v := range []int64{0, top / 2, top} {
		y := float64(padTop+plotH) - float64(v)*yScale
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`, padLeft, y, padLeft+plotW, y, gridColor)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%d</text>`, padLeft-6, y, v)
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`, padLeft, padTop, padLeft, padTop+plotH, axisColor)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`, padLeft, padTop+plotH, padLeft+plotW, padTop+plotH, axisColor)
	dayW = float64(plotW) / float64(max(len(days), 1))
	step := max(1, (len(days)+maxXLabels-1)/maxXLabels)
	for i := 0; i < len(days); i += step {
		x := float64(padLeft) + (float64(i)+0.5)*dayW
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x, padTop+plotH+16, template.HTMLEscapeString(days[i][5:]))
	}
	for i, s := range legend {
		x := padLeft + i*legendGap
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`,
			x, chartH-12, s.color, x+14, chartH-3, template.HTMLEscapeString(s.name))
	}
	return yScale, dayW
}

// barChart draws one stacked bar per day.
func barChart(title string, days []string, stack []series) template.HTML {
	var top int64
	for i := range days {
		var sum int64
		for _, s := range stack {
			sum += s.values[i]
		}
		top = max(top, sum)
	}
	top = niceMax(top)
	var b strings.Builder
	yScale, dayW := chartFrame(&b, title, days, top, stack)
	barW := dayW * (1 - barGap)
	for i, day := range days {
		base := float64(padTop + plotH)
		x := float64(padLeft) + float64(i)*dayW + (dayW-barW)/2
		for _, s := range stack {
			v := s.values[i]
			if v == 0 {
				continue
			}
			h := float64(v) * yScale
			base -= h
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %d %s</title></rect>`,
				x, base, barW, h, s.color, day, v, template.HTMLEscapeString(s.name))
		}
	}
	if allZero(stack) {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#777">no outcomes in the period</text>`, padLeft+plotW/2, padTop+plotH/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped labels only
}

// lineChart draws one line per series over the days.
func lineChart(title string, days []string, lines []series) template.HTML {
	var top int64
	for _, s := range lines {
		for _, v := range s.values {
			top = max(top, v)
		}
	}
	top = niceMax(top)
	var b strings.Builder
	yScale, dayW := chartFrame(&b, title, days, top, lines)
	for _, s := range lines {
		var pts []string
		for i, v := range s.values {
			x := float64(padLeft) + (float64(i)+0.5)*dayW
			y := float64(padTop+plotH) - float64(v)*yScale
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.color, strings.Join(pts, " "))
		for i, v := range s.values {
			x := float64(padLeft) + (float64(i)+0.5)*dayW
			y := float64(padTop+plotH) - float64(v)*yScale
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s: %d %s</title></circle>`,
				x, y, s.color, days[i], v, template.HTMLEscapeString(s.name))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped labels only
}

func allZero(ss []series) bool {
	for _, s := range ss {
		for _, v := range s.values {
			if v != 0 {
				return false
			}
		}
	}
	return true
}
