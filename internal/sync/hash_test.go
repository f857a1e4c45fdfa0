package sync

import (
	"strings"
	"testing"
	"time"
)

func TestVisibleText(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"plain", "a  b\n c", "a b c"},
		{"br and escapes", "Ring &amp; wait<br>\nGate &lt;3&gt;", "Ring & wait Gate <3>"},
		{"outlook wrap", "<html><head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n" +
			"<style type=\"text/css\" style=\"display:none;\"> P {margin-top:0;margin-bottom:0;} </style>\r\n</head>\r\n" +
			"<body dir=\"ltr\">\r\n<div>Work order WO-1<br>\r\nRing twice</div>\r\n</body>\r\n</html>\r\n", "Work order WO-1 Ring twice"},
		{"comment and title", "<!-- converted from text --><title>x</title><p>a</p><p>b</p>", "a b"},
		{"inline tags join", "<b>Wo</b>rk <span>order</span>", "Work order"},
		{"link", `Open: <a href="https://o/main.aspx?a=1&amp;b=2">https://o/main.aspx?a=1&amp;b=2</a>`, "Open: https://o/main.aspx?a=1&b=2"},
		{"quoted >", `<div title="a>b">x</div>`, "x"},
		{"nbsp", "a&nbsp;&nbsp;b\u00a0c", "a b c"},
		{"lone <", "a < b", "a < b"},
		{"unterminated tag", "a <div class=", "a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := VisibleText(c.in); got != c.want {
				t.Errorf("VisibleText(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestContentHash(t *testing.T) {
	start := time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)
	ours := Content{Subject: "WO-1 · Contoso", Body: "Work order WO-1<br>\nRing &amp; wait<br>\n<a href=\"u\">u</a>",
		Location: "1 Main St", Start: start, End: start.Add(time.Hour), ShowAs: "busy"}
	base := ContentHash(ours)
	if !strings.HasPrefix(base, "v1:") || len(base) != 3+6*12+5 {
		t.Fatalf("hash format: %q", base)
	}
	cet := time.FixedZone("CET", 3600)
	for _, c := range []struct {
		name string
		edit func(*Content)
		want FieldSet // fields that count as changed
	}{
		{"outlook rewrap", func(c *Content) { *c = outlookWrap(*c) }, 0},
		{"outlook reformat", func(c *Content) {
			c.Body = "<html><body><p>Work order WO-1</p><p>Ring &amp; wait</p><p><a href=\"u\" target=\"_blank\">u</a></p></body></html>"
		}, 0},
		{"subject whitespace", func(c *Content) { c.Subject = "  WO-1 · Contoso " }, 0},
		{"seconds", func(c *Content) { c.Start = c.Start.Add(30 * time.Second) }, 0},
		{"time zone", func(c *Content) { c.Start = c.Start.In(cet) }, 0},
		{"showAs case", func(c *Content) { c.ShowAs = "Busy" }, 0},
		{"subject", func(c *Content) { c.Subject = "WO-1 · Fabrikam" }, FieldSubject},
		{"body text", func(c *Content) { c.Body = strings.Replace(c.Body, "wait", "knock", 1) }, FieldBody},
		{"location", func(c *Content) { c.Location = "2 Main St" }, FieldLocation},
		{"moved", func(c *Content) { c.Start, c.End = c.Start.Add(time.Hour), c.End.Add(time.Hour) }, FieldTimes},
		{"resized", func(c *Content) { c.End = c.End.Add(time.Minute) }, FieldEnd},
		{"showAs", func(c *Content) { c.ShowAs = "tentative" }, FieldShowAs},
	} {
		t.Run(c.name, func(t *testing.T) {
			edited := ours
			c.edit(&edited)
			if got := ChangedFields(base, edited); got != c.want {
				t.Errorf("ChangedFields = %v, want %v", got, c.want)
			}
			if got := Diff(ours, edited); got != c.want {
				t.Errorf("Diff = %v, want %v", got, c.want)
			}
			if (ContentHash(edited) == base) != (c.want == 0) {
				t.Errorf("hash equality disagrees with %v", c.want)
			}
		})
	}
	for _, bad := range []string{"", "v0:abc", "v1:a.b"} {
		if got := ChangedFields(bad, ours); got != AllFields {
			t.Errorf("ChangedFields(%q) = %v, want all", bad, got)
		}
	}
}

func TestApplyFieldsAndString(t *testing.T) {
	a := Content{Subject: "a", Body: "a", Location: "a", ShowAs: "busy"}
	b := Content{Subject: "b", Body: "b", Location: "b", ShowAs: "free", Start: time.Unix(60, 0)}
	got := ApplyFields(a, b, FieldSubject|FieldStart)
	if got.Subject != "b" || got.Body != "a" || !got.Start.Equal(b.Start) || got.ShowAs != "busy" {
		t.Errorf("ApplyFields = %+v", got)
	}
	if s := (FieldSubject | FieldEnd | FieldShowAs).String(); s != "subject,end,showAs" {
		t.Errorf("String = %q", s)
	}
}
