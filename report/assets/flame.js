// itersnap report: the flame graph's search, click to zoom and reset.
// Frames are drawn by the Go side; this only moves and marks them, the
// way flamegraph.pl's embedded script does.
(function () {
  "use strict";
  var svg = document.getElementById("flame");
  if (!svg) return;
  var W = +svg.getAttribute("data-width"), PAD = +svg.getAttribute("data-pad");
  var CHAR = +svg.getAttribute("data-char");
  var EPS = 0.015; // coordinates are rounded to 0.01
  var frames = [], byG = new Map(), root = null;
  svg.querySelectorAll("g.f").forEach(function (g) {
    var r = g.querySelector("rect");
    var f = {
      g: g, r: r, t: g.querySelector("text"),
      name: g.querySelector("title").textContent.split("\n")[0],
      x: +r.getAttribute("x"), w: +r.getAttribute("width"), y: +r.getAttribute("y")
    };
    frames.push(f);
    byG.set(g, f);
    if (!root || f.y > root.y) root = f;
  });

  function fit(name, w) {
    var n = Math.floor((w - 6) / CHAR);
    if (n < 3) return "";
    var chars = Array.from(name);
    return chars.length <= n ? name : chars.slice(0, n - 2).join("") + "..";
  }

  function place(f, x, w) {
    f.r.setAttribute("x", x.toFixed(2));
    f.r.setAttribute("width", w.toFixed(2));
    f.t.setAttribute("x", (x + 3).toFixed(2));
    f.t.textContent = fit(f.name, w);
  }

  var resetButton = document.getElementById("flame-reset");
  var zoomInfo = document.getElementById("flame-zoomed");

  // zoom shows z across the whole width, its descendants scaled with it,
  // its ancestors full width and faded, everything else hidden.
  function zoom(z) {
    if (z === root) return unzoom();
    var scale = (W - 2 * PAD) / z.w;
    frames.forEach(function (f) {
      var ancestor = f.y > z.y && f.x <= z.x + EPS && f.x + f.w >= z.x + z.w - EPS;
      var inside = f.y <= z.y && f.x >= z.x - EPS && f.x + f.w <= z.x + z.w + EPS;
      if (ancestor) {
        f.g.style.display = "";
        f.g.classList.add("a");
        place(f, PAD, W - 2 * PAD);
      } else if (inside) {
        f.g.style.display = "";
        f.g.classList.remove("a");
        place(f, PAD + (f.x - z.x) * scale, f.w * scale);
      } else {
        f.g.style.display = "none";
      }
    });
    svg.setAttribute("data-zoomed", z.name);
    zoomInfo.textContent = "zoomed into " + z.name + " (click the bottom frame or Reset to zoom out)";
  }

  function unzoom() {
    frames.forEach(function (f) {
      f.g.style.display = "";
      f.g.classList.remove("a");
      place(f, f.x, f.w);
    });
    svg.removeAttribute("data-zoomed");
    zoomInfo.textContent = "";
  }

  svg.addEventListener("click", function (e) {
    var g = e.target.closest && e.target.closest("g.f");
    if (g && byG.has(g)) zoom(byG.get(g));
  });

  var input = document.getElementById("flame-search");
  var matched = document.getElementById("flame-matched");

  // search marks the frames whose name contains the text (any case) and
  // says what share of the threads pass through them.
  function search() {
    var term = input.value.trim().toLowerCase();
    var ranges = [];
    frames.forEach(function (f) {
      var hit = term !== "" && f.name.toLowerCase().indexOf(term) >= 0;
      f.g.classList.toggle("m", hit);
      if (hit) ranges.push([f.x, f.x + f.w]);
    });
    if (term === "") {
      matched.textContent = "";
      return;
    }
    ranges.sort(function (a, b) { return a[0] - b[0]; });
    var covered = 0, end = -Infinity;
    ranges.forEach(function (r) {
      if (r[0] > end) { covered += r[1] - r[0]; end = r[1]; }
      else if (r[1] > end) { covered += r[1] - end; end = r[1]; }
    });
    var pct = 100 * covered / (W - 2 * PAD);
    matched.textContent = ranges.length + " frame" + (ranges.length === 1 ? "" : "s") +
      " match, " + pct.toFixed(1) + "% of threads";
  }
  input.addEventListener("input", search);

  resetButton.addEventListener("click", function () {
    input.value = "";
    search();
    unzoom();
  });
})();
