package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

// requireChromium returns the path of a Chromium to drive, and skips the
// test when there is none. With ITERSNAP_REQUIRE_BPF=1, which .ci/run sets
// and where .ci/run installs Debian's chromium, it fails instead: CI must
// not skip the browser test.
func requireChromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	if os.Getenv("ITERSNAP_REQUIRE_BPF") == "1" {
		t.Fatalf("browser test cannot run: no chromium on PATH (Debian: apt-get install -y chromium), but ITERSNAP_REQUIRE_BPF=1")
	}
	t.Skip("browser test skipped: no chromium on PATH (Debian: apt-get install -y chromium)")
	return ""
}

// TestReportInBrowser opens the report of a real snapshot pair in headless
// Chromium: a process that leaks sockets and a vfork parent blocked in D
// between the takes, and a thread named like markup. It finds the flame
// graph, the fd chart and the finding tables, searches the flame graph,
// clicks a frame (a real mouse event at its place on the screen) and checks
// that the frame now spans the whole width, then checks the screenshot is
// a picture, not a blank page.
func TestReportInBrowser(t *testing.T) {
	bpftest.RequireBPF(t)
	chromium := requireChromium(t)
	time.Local = time.UTC

	db := filepath.Join(t.TempDir(), "itersnap.db")
	leaker := startRole(t, "leaker")
	leak := func(n int) {
		fmt.Fprintf(leaker.stdin, "%d\n", n)
		if line, _ := leaker.stdout.ReadString('\n'); !strings.HasPrefix(line, "leaked ") {
			t.Fatalf("leaker said %q", line)
		}
	}
	const markup = "<img src=x>"
	startRole(t, "sleeper", markup)
	a := take(t, db)
	leak(20)
	take(t, db)
	leak(20)
	vforker := startRole(t, "vforker").fields
	waitState(t, vforker[1], 'D')
	b := take(t, db)

	html := filepath.Join(t.TempDir(), "incident.html")
	if r := itersnap(t, db, "report", fmt.Sprint(a), fmt.Sprint(b), "-o", html); r.code != 0 || r.stderr != "" {
		t.Fatalf("report: exit %d, stderr %q", r.code, r.stderr)
	}

	started := time.Now()
	profile := t.TempDir() // before the cleanup below, so removed after Chromium exits
	var browserLog bytes.Buffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		// Nothing may reach for the network: the machine has none, and
		// the report must not need it.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.CombinedOutput(&browserLog),
	)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for Chromium to exit
		cancel()
	})
	fail := func(what string, err error) {
		t.Helper()
		t.Fatalf("%s: %v\nchromium said:\n%s", what, err, browserLog.String())
	}

	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate("file://"+html),
		chromedp.WaitVisible(chromedp.ID("flame")),
	); err != nil {
		fail("open the report", err)
	}

	type pageFacts struct {
		Frames    int      `json:"frames"`
		Blocked   int      `json:"blocked"`
		Lines     int      `json:"lines"`
		Tables    []string `json:"tables"`
		FDLeak    string   `json:"fdLeak"`
		Blocking  string   `json:"blocking"`
		Images    int      `json:"images"`
		NamedShow bool     `json:"namedShown"`
	}
	facts, err := chromedp.Run(ctx, chromedp.Evaluate[pageFacts](`({
		frames: document.querySelectorAll("#flame g.f").length,
		blocked: document.querySelectorAll("#flame g.f[class*=' b']").length,
		lines: document.querySelectorAll("#fdchart polyline").length,
		tables: Array.from(document.querySelectorAll("table.finding"), t => t.dataset.kind),
		fdLeak: (document.querySelector("table.finding[data-kind=fd_leak]") || {}).innerText || "",
		blocking: (document.querySelector("table.finding[data-kind=newly_blocked]") || {}).innerText || "",
		images: document.images.length,
		namedShown: Array.from(document.querySelectorAll("#flame title"), e => e.textContent.split("\n")[0]).includes(`+"`"+markup+"`"+`),
	})`))
	if err != nil {
		fail("read the page", err)
	}
	if facts.Frames < 20 || facts.Blocked == 0 {
		t.Errorf("flame graph has %d frames, %d of blocked threads", facts.Frames, facts.Blocked)
	}
	if facts.Lines == 0 {
		t.Errorf("fd chart has no line")
	}
	for _, kind := range []string{"fd_leak", "newly_blocked"} {
		if !slices.Contains(facts.Tables, kind) {
			t.Errorf("no %s table (tables: %v)", kind, facts.Tables)
		}
	}
	if !strings.Contains(facts.FDLeak, leaker.fields[0]) || !strings.Contains(facts.FDLeak, "unix UNCONNECTED") {
		t.Errorf("fd_leak table does not show the leaker %s:\n%s", leaker.fields[0], facts.FDLeak)
	}
	if !strings.Contains(facts.Blocking, vforker[1]) {
		t.Errorf("newly_blocked table does not show the vfork parent %s:\n%s", vforker[1], facts.Blocking)
	}
	if facts.Images != 0 || !facts.NamedShow {
		t.Errorf("a thread named %q: %d images in the page, shown as a frame name: %v", markup, facts.Images, facts.NamedShow)
	}

	// Search by typing, as a person would.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("flame-search"), "kernel_clone")); err != nil {
		fail("type a search", err)
	}
	matched, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelectorAll("#flame g.f.m").length + " " + document.getElementById("flame-matched").textContent`))
	if err != nil || strings.HasPrefix(matched, "0 ") || !strings.Contains(matched, "% of threads") {
		t.Errorf("search for kernel_clone (the vfork parent's frame): %q %v", matched, err)
	}

	// The frame to click: the vfork parent's kernel_clone frame, blocked,
	// under the thread name on top of it. Scrolled into view, its place on
	// the screen is where the mouse goes.
	type box struct {
		Index int     `json:"index"`
		X     float64 `json:"x"`
		Y     float64 `json:"y"`
		W     float64 `json:"w"`
		Full  float64 `json:"full"`
	}
	target, err := chromedp.Run(ctx, chromedp.Evaluate[box](`(() => {
		const frames = Array.from(document.querySelectorAll("#flame g.f"));
		const name = g => g.querySelector("title").textContent.split("\n")[0];
		const index = frames.findIndex(g => name(g) === "kernel_clone" && / b\d/.test(g.getAttribute("class")));
		const g = frames[index];
		g.scrollIntoView({block: "center"});
		const r = g.querySelector("rect").getBoundingClientRect();
		const svg = document.getElementById("flame");
		return {index, x: r.left + r.width / 2, y: r.top + r.height / 2, w: r.width,
			full: +svg.dataset.width - 2 * +svg.dataset.pad};
	})()`))
	if err != nil {
		fail("find the kernel_clone frame", err)
	}
	if target.W <= 0 || target.W > 0.9*1280 {
		t.Fatalf("kernel_clone frame is %.1f px wide on the screen: nothing to zoom into", target.W)
	}
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(target.X, target.Y)); err != nil {
		fail("click the frame", err)
	}
	type zoomFacts struct {
		Width  float64 `json:"width"`
		Hidden int     `json:"hidden"`
		Zoomed string  `json:"zoomed"`
	}
	zoom, err := chromedp.Run(ctx, chromedp.Evaluate[zoomFacts](fmt.Sprintf(`(() => {
		const frames = Array.from(document.querySelectorAll("#flame g.f"));
		return {
			width: +frames[%d].querySelector("rect").getAttribute("width"),
			hidden: frames.filter(g => g.style.display === "none").length,
			zoomed: document.getElementById("flame").getAttribute("data-zoomed") || "",
		};
	})()`, target.Index)))
	if err != nil {
		fail("read the zoom", err)
	}
	if zoom.Width < target.Full-0.5 || zoom.Zoomed != "kernel_clone" || zoom.Hidden == 0 {
		t.Errorf("after the click: the frame is %.2f wide (want the full %.2f), zoomed into %q, %d frames hidden",
			zoom.Width, target.Full, zoom.Zoomed, zoom.Hidden)
	}

	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		fail("screenshot", err)
	}
	if path := os.Getenv("ITERSNAP_SCREENSHOT"); path != "" {
		os.WriteFile(path, shot, 0o644)
	}
	checkNotBlank(t, shot)
	t.Logf("browser part took %v", time.Since(started).Round(time.Millisecond))
}

// checkNotBlank decodes a PNG screenshot and wants a picture: many colours
// and a good share of pixels that are not background.
func checkNotBlank(t *testing.T, shot []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	colours := map[[3]uint32]bool{}
	b := img.Bounds()
	notWhite := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if r>>8 < 240 || g>>8 < 240 || bl>>8 < 240 {
				notWhite++
			}
		}
	}
	share := float64(notWhite) / float64(b.Dx()*b.Dy())
	if len(colours) < 50 || share < 0.05 {
		t.Errorf("screenshot %v looks blank: %d colours, %.1f%% of pixels not white", b.Size(), len(colours), 100*share)
	}
	t.Logf("screenshot %v: %d colours, %.1f%% of pixels not white", b.Size(), len(colours), 100*share)
	_ = image.Point{}
}
