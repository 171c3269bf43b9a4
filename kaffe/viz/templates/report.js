/* kaffe viz: navigation, pages, read-outs and the receptive-field inspector.
 * Vanilla JS, no network. Geometry comes from the JSON block #viz-data;
 * pictures from the page. Field arithmetic mirrors kaffe/viz/report.py
 * (field_rect): value (y, x) of a top sees input rows
 * start[0] + y·jump[0] … + size[0] − 1 (columns likewise). */
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("viz-data").textContent);
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  let currentRun = 0;

  /* -- numbers ----------------------------------------------------------- */
  function fmt(x) {
    if (x === null || x === undefined || Number.isNaN(x)) return "NaN";
    if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
    if (x === 0) return "0";
    const a = Math.abs(x);
    const s = (a >= 1e5 || a < 1e-3) ? x.toExponential(2) : String(Number(x.toPrecision(4)));
    return s.replace("-", "−");
  }
  function rangeText(a, b) { return a === b ? fmtInt(a) : fmtInt(a) + "–" + fmtInt(b); }
  function fmtInt(v) { return v < 0 ? "−" + (-v) : String(v); }

  /* -- loading pictures lazily (data-src → src) ------------------------- */
  function load(img) {
    if (img && !img.getAttribute("src") && img.dataset.src) img.src = img.dataset.src;
  }
  function srcOf(img) { return img ? (img.getAttribute("src") || img.dataset.src) : null; }

  /* -- navigation ------------------------------------------------------ */
  const sections = $$("section.layer");
  const links = new Map($$("#layer-list a").map(a => [a.dataset.layer, a]));
  const nodes = new Map($$(".gnode").map(g => [g.dataset.layer, g]));

  function openLayer(index, focus) {
    const sec = document.getElementById("L" + index);
    if (!sec) return;
    sec.scrollIntoView({ behavior: "smooth", block: "start" });
    history.replaceState(null, "", "#L" + index);
    sec.classList.remove("flash"); void sec.offsetWidth; sec.classList.add("flash");
    setTimeout(() => sec.classList.remove("flash"), 1200);
    setCurrent(String(index));
    if (focus) sec.focus({ preventScroll: true });
  }

  let current = null;
  function setCurrent(index) {
    if (current === index) return;
    if (current !== null) {
      links.get(current) && links.get(current).classList.remove("current");
      nodes.get(current) && nodes.get(current).classList.remove("current");
    }
    current = index;
    const a = links.get(index);
    if (a) {
      a.classList.add("current");
      // Keep it in the sidebar's view (scrollIntoView would stop the
      // page's own smooth scroll).
      const nav = a.closest("nav"), r = a.getBoundingClientRect(), n = nav.getBoundingClientRect();
      if (r.top < n.top || r.bottom > n.bottom) nav.scrollTop += r.top - n.top - n.height / 2;
    }
    const g = nodes.get(index);
    if (g) g.classList.add("current");
  }
  if ("IntersectionObserver" in window) {
    const seen = new Map();
    const io = new IntersectionObserver(entries => {
      entries.forEach(e => seen.set(e.target.dataset.index, e.isIntersecting));
      const first = sections.find(s => seen.get(s.dataset.index));
      if (first) setCurrent(first.dataset.index);
    }, { rootMargin: "-8% 0px -70% 0px" });
    sections.forEach(s => io.observe(s));
  }
  sections.forEach(s => s.setAttribute("tabindex", "-1"));

  // Graph: click a box or an in-place layer's name; Enter on a focused box.
  const graph = $("#graph");
  if (graph) {
    graph.addEventListener("click", ev => {
      const t = ev.target.closest("[data-layer]");
      if (t) openLayer(t.dataset.layer);
    });
    graph.addEventListener("keydown", ev => {
      if (ev.key === "Enter" || ev.key === " ") {
        const t = ev.target.closest(".gnode");
        if (t) { ev.preventDefault(); openLayer(t.dataset.layer, true); }
      }
    });
    const baseW = parseFloat(graph.getAttribute("width"));
    const baseH = parseFloat(graph.getAttribute("height"));
    let zoom = 1;
    const setZoom = z => {
      zoom = Math.max(0.2, Math.min(3, z));
      graph.setAttribute("width", (baseW * zoom).toFixed(0));
      graph.setAttribute("height", (baseH * zoom).toFixed(0));
    };
    $$(".zoom button").forEach(b => b.addEventListener("click", () => {
      const step = Number(b.dataset.zoom);
      if (step === 0) {
        const box = $("#graph-scroll");
        setZoom(Math.min(1, (box.clientWidth - 8) / baseW, (box.clientHeight - 8) / baseH));
      } else setZoom(zoom * (step > 0 ? 1.25 : 0.8));
    }));
  }

  $$("#layer-list a").forEach(a => a.addEventListener("click", ev => {
    ev.preventDefault(); openLayer(a.dataset.layer);
  }));
  $$(".io a, .anchor").forEach(a => a.addEventListener("click", ev => {
    const m = /#L(\d+)$/.exec(a.getAttribute("href") || "");
    if (m) { ev.preventDefault(); openLayer(m[1]); }
  }));

  // Sidebar filter.
  const filter = $("#layer-filter");
  if (filter) {
    filter.addEventListener("input", () => {
      const q = filter.value.trim().toLowerCase();
      $$("#layer-list li").forEach(li => {
        li.hidden = q && !li.textContent.toLowerCase().includes(q);
      });
    });
    filter.addEventListener("keydown", ev => {
      if (ev.key === "Enter") {
        const li = $$("#layer-list li").find(x => !x.hidden);
        if (li) openLayer($("a", li).dataset.layer);
      } else if (ev.key === "Escape") { filter.value = ""; filter.dispatchEvent(new Event("input")); filter.blur(); }
    });
  }

  /* -- runs (several --image) ---------------------------------------- */
  function setRun(k) {
    currentRun = k;
    $$(".run").forEach(el => { el.hidden = Number(el.dataset.run) !== k; });
    $$(".run-btn").forEach(b => {
      const on = Number(b.dataset.run) === k;
      b.classList.toggle("on", on); b.setAttribute("aria-pressed", on ? "true" : "false");
    });
    $$('.run[data-run="' + k + '"] img.maps').forEach(img => { if (!img.hidden) load(img); });
    closeInspector();
  }
  $$(".run-btn").forEach(b => b.addEventListener("click", () => setRun(Number(b.dataset.run))));

  /* -- pages ------------------------------------------------------------ */
  function pageOf(run) {
    const imgs = $$("img.maps", run);
    return Math.max(0, imgs.findIndex(i => !i.hidden));
  }
  function showPage(run, p) {
    const imgs = $$("img.maps", run);
    if (!imgs.length) return;
    p = (p + imgs.length) % imgs.length;
    imgs.forEach((img, i) => { img.hidden = i !== p; if (i === p) load(img); });
    const pg = $(".pg", run);
    if (pg) {
      const img = imgs[p];
      const m = mapInfo(img);
      const first = p * m.perPage, last = Math.min(m.shown, first + m.perPage) - 1;
      pg.textContent = "page " + (p + 1) + " / " + imgs.length + " · channels " + first + "–" + last;
    }
    $$(".mark.pixel", run).forEach(e => e.remove());
  }
  $$(".pager button").forEach(b => b.addEventListener("click", () => {
    const run = b.closest(".run");
    showPage(run, pageOf(run) + Number(b.dataset.step));
  }));

  /* -- pictures → values ---------------------------------------------- */
  const PAL = DATA.palette;
  function paletteIndex(img, px, py) {
    try {
      let c = img._kv_canvas;
      if (!c) {
        c = document.createElement("canvas");
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        c.getContext("2d", { willReadFrequently: true }).drawImage(img, 0, 0);
        img._kv_canvas = c;
      }
      const d = c.getContext("2d", { willReadFrequently: true }).getImageData(px, py, 1, 1).data;
      let best = 0, bestD = Infinity;
      for (let i = 0; i < PAL.length; i++) {
        const p = PAL[i];
        const dd = (p[0] - d[0]) ** 2 + (p[1] - d[1]) ** 2 + (p[2] - d[2]) ** 2;
        if (dd < bestD) { bestD = dd; best = i; }
      }
      return best;
    } catch (e) { return null; }
  }
  function valueText(img, px, py, scale) {
    const i = paletteIndex(img, px, py);
    if (i === null) return "";
    if (i === DATA.nanIndex) return "NaN/Inf";
    if (i > 2 * DATA.levels) return "";
    const t = (i - DATA.zeroIndex) / DATA.levels;   // colour ∝ √|value|
    const v = Math.sign(t) * t * t * scale;
    const sat = (i === 0 || i === 2 * DATA.levels) ? " (saturated)" : "";
    return "≈ " + fmt(v) + sat;
  }
  function natural(img, ev) {
    const r = img.getBoundingClientRect();
    const bw = img.clientLeft || 0, bh = img.clientTop || 0;
    const x = (ev.clientX - r.left - bw) * img.naturalWidth / img.clientWidth;
    const y = (ev.clientY - r.top - bh) * img.naturalHeight / img.clientHeight;
    return [Math.floor(x), Math.floor(y)];
  }

  function mapInfo(img) {
    const layer = DATA.layers[img.dataset.layer];
    const top = layer.tops[Number(img.dataset.top)];
    return Object.assign({ layer, top, run: Number(img.dataset.run), page: Number(img.dataset.page) },
                         top.maps[Number(img.dataset.run)]);
  }

  /* Where a click on a map picture falls: channel, full-size rows/cols. */
  function mapHit(img, px, py) {
    const m = mapInfo(img);
    if (m.kind === "vector") {
      const i = py * m.cols + px;
      if (px < 0 || py < 0 || px >= m.cols || i >= m.shown) return null;
      return { m, index: i, px, py };
    }
    const [th, tw] = m.tile, g = m.gap;
    const onPage = Math.min(m.perPage, m.shown - m.page * m.perPage);
    const cols = Math.min(m.cols, onPage);
    const col = Math.floor(px / (tw + g)), row = Math.floor(py / (th + g));
    const xd = px - col * (tw + g), yd = py - row * (th + g);
    if (px < 0 || py < 0 || col >= cols || xd >= tw || yd >= th) return null;
    const idx = row * cols + col;
    if (idx >= onPage) return null;
    const f = m.factor, [H, W] = m.map;
    return {
      m, channel: m.page * m.perPage + idx, tileRow: row, tileCol: col, xd, yd, px, py,
      rows: [yd * f, Math.min(H - 1, yd * f + f - 1)],
      cols: [xd * f, Math.min(W - 1, xd * f + f - 1)],
    };
  }

  /* -- hover read-outs ---------------------------------------------------- */
  document.addEventListener("mousemove", ev => {
    const img = ev.target;
    if (!(img instanceof HTMLImageElement)) return;
    if (img.classList.contains("maps")) {
      const out = $(".hover-read", img.closest(".run"));
      const [px, py] = natural(img, ev);
      const hit = mapHit(img, px, py);
      if (!out) return;
      if (!hit) { out.innerHTML = "&nbsp;"; return; }
      if (hit.m.kind === "vector") {
        out.textContent = "value " + hit.index + " " + valueText(img, px, py, hit.m.scale);
      } else {
        out.textContent = "channel " + hit.channel + " · row " + rangeText(...hit.rows) +
          ", col " + rangeText(...hit.cols) + " " + valueText(img, px, py, hit.m.scale) + " — click to trace";
      }
    } else if (img.classList.contains("filters")) {
      const out = $(".hover-read", img.closest(".block"));
      const [px, py] = natural(img, ev);
      const t = filterHit(img, px, py);
      if (out) out.textContent = t || "\u00a0";
    }
  });

  function filterHit(img, px, py) {
    const layer = DATA.layers[img.dataset.layer];
    const f = layer.filters;
    if (!f) return "";
    const [kh, kw] = f.tile;
    if (f.kind === "heatmap") {
      const fy = f.factor, fx = f.colFactor;
      const r0 = py * fy, c0 = px * fx;
      if (r0 >= f.rows || c0 >= f.cols || px < 0 || py < 0) return "";
      const what = (fy > 1 ? "outputs " + r0 + "–" + Math.min(f.rows - 1, r0 + fy - 1) : "output " + r0) +
        " · " + (fx > 1 ? "inputs " + c0 + "–" + Math.min(f.cols - 1, c0 + fx - 1) : "input " + c0) +
        (fy * fx > 1 ? " (block mean)" : "");
      return what + " " + valueText(img, px, py, f.scale);
    }
    if (f.kind === "colour" || f.wrap > 1) {
      const line = Math.floor(py / (kh + 1)), col = Math.floor(px / (kw + 1));
      if (py - line * (kh + 1) >= kh || px - col * (kw + 1) >= kw || col >= f.wrap) return "";
      const r = line * f.wrap + col;
      if (r >= f.shownRows) return "";
      if (f.kind === "colour") return "filter " + r + " (3×" + kh + "×" + kw + ", drawn in colour)";
      return f.rowWord + " " + r + groupText(f, r) + " " + valueText(img, px, py, f.scale);
    }
    // rows × columns of tiles, with wider gaps between groups
    let y = 0, row = -1;
    for (let r = 0; r < f.shownRows; r++) {
      if (r > 0 && f.groups.some(g => g[0] === r)) y += f.groupGap;
      if (py >= y && py < y + kh) { row = r; break; }
      y += kh + f.gap;
    }
    const col = Math.floor(px / (kw + f.gap));
    if (row < 0 || col >= f.shownCols || px - col * (kw + f.gap) >= kw) return "";
    let text = f.rowWord + " " + row + " · tile " + col;
    const g = f.groups.find(g => row >= g[0] && row < g[1]);
    if (g) text += " (group " + f.groups.indexOf(g) + ": " + f.colWord + " " + (g[2] + col) + ")";
    else text += " = " + f.colWord + " " + col;
    return text + " " + valueText(img, px, py, f.scale);
  }
  function groupText(f, r) {
    const g = f.groups.find(g => r >= g[0] && r < g[1]);
    return g ? " (group " + f.groups.indexOf(g) + ", reads channel " + g[2] + (g[3] - g[2] > 1 ? "–" + (g[3] - 1) : "") + ")" : "";
  }

  /* -- the inspector ------------------------------------------------------ */
  let inspector = null;
  function closeInspector() {
    if (inspector) inspector.hidden = true;
    $$(".mark.pixel").forEach(e => e.remove());
  }
  function ensureInspector() {
    if (!inspector) {
      inspector = document.createElement("div");
      inspector.id = "inspector";
      inspector.setAttribute("role", "region");
      inspector.setAttribute("aria-label", "Receptive field");
    }
    return inspector;
  }

  // A picture's own size in pixels (its width/height attributes; the
  // .width property would give the size on screen).
  function dim(img, which) {
    return Number(img.getAttribute(which)) ||
      (which === "width" ? img.naturalWidth : img.naturalHeight);
  }

  function mark(wrapper, img, x0, y0, x1, y1, cls) {
    // A rectangle over picture pixels x0..x1, y0..y1 (inclusive) of img.
    const d = document.createElement("div");
    d.className = "mark " + cls;
    const W = dim(img, "width"), H = dim(img, "height");
    d.style.left = (x0 / W * 100) + "%";
    d.style.top = (y0 / H * 100) + "%";
    d.style.width = ((x1 - x0 + 1) / W * 100) + "%";
    d.style.height = ((y1 - y0 + 1) / H * 100) + "%";
    wrapper.appendChild(d);
    return d;
  }

  function fieldRect(f, rows, cols) {
    const e = 1e-9;
    return [Math.floor(f.start[0] + rows[0] * f.jump[0] + e),
            Math.floor(f.start[1] + cols[0] * f.jump[1] + e),
            Math.ceil(f.start[0] + rows[1] * f.jump[0] + f.size[0] - 1 - e),
            Math.ceil(f.start[1] + cols[1] * f.jump[1] + f.size[1] - 1 - e)];
  }

  function windowRange(w, a, lo, hi) {
    if (w.kind === "same") return [lo, hi];
    const k = w.kernel[a], s = w.stride[a], p = w.pad[a], d = w.dilation[a];
    if (w.deconv) return [Math.ceil((lo + p - d * (k - 1)) / s), Math.floor((hi + p) / s)];
    return [lo * s - p, hi * s - p + d * (k - 1)];
  }

  function channelsRead(w, c, bottomChannels) {
    // [bottom k, first channel, last channel] the value of channel c reads.
    switch (w.channels) {
      case "all": return [0, 0, bottomChannels - 1];
      case "group": {
        const g = Math.floor(c / w.outPerGroup);
        return [0, g * w.groupChannels, (g + 1) * w.groupChannels - 1];
      }
      case "near": return [0, Math.max(0, c - w.half), Math.min(bottomChannels - 1, c + w.half)];
      case "concat": {
        let off = 0;
        for (let k = 0; k < w.concat.length; k++) {
          if (c < off + w.concat[k]) return [k, c - off, c - off];
          off += w.concat[k];
        }
        return [0, c, c];
      }
      default: return [0, c, c];
    }
  }

  function figure(cls, caption, img) {
    const fig = document.createElement("figure");
    fig.className = cls;
    const cap = document.createElement("figcaption");
    cap.innerHTML = caption;
    const pic = document.createElement("div");
    pic.className = "pic";
    if (img) pic.appendChild(img);
    fig.append(cap, pic);
    return [fig, pic];
  }
  function cloneImg(src, w, h, cls) {
    // A copy of a picture, scaled by a whole factor to about 240–400 px.
    const img = document.createElement("img");
    img.src = src;
    img.setAttribute("width", w); img.setAttribute("height", h);
    const zoom = Math.max(1, Math.min(12, Math.floor(400 / Math.max(w, h * 0.8))));
    img.style.width = (w * zoom) + "px";
    img.className = "pixelated " + (cls || "");
    img.alt = "";
    return img;
  }
  const esc = s => String(s).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  function inputFigure(run, rect, caption, full) {
    const src = document.getElementById("input-" + run);
    if (!src) return null;
    const img = cloneImg(srcOf(src), dim(src, "width"), dim(src, "height"));
    const [fig, pic] = figure("insp-input", caption, img);
    if (rect) {
      const H = dim(src, "height"), W = dim(src, "width");
      const y0 = Math.max(0, rect[0]), x0 = Math.max(0, rect[1]);
      const y1 = Math.min(H - 1, rect[2]), x1 = Math.min(W - 1, rect[3]);
      if (y1 >= y0 && x1 >= x0) {
        const m = mark(pic, img, x0, y0, x1, y1, "rf rf-input");
        m.dataset.rows = rect[0] + "-" + rect[2];
        m.dataset.cols = rect[1] + "-" + rect[3];
        m.dataset.full = full ? "1" : "0";
      }
    }
    return fig;
  }

  function inspect(img, hit) {
    const m = hit.m, layer = m.layer, f = m.top.field, run = m.run;
    const sec = img.closest("section.layer");
    const box = ensureInspector();
    box.hidden = false;
    box.innerHTML = "";
    $$(".mark.pixel").forEach(e => e.remove());
    const wrap = img.parentElement;
    if (m.kind === "vector") {
      mark(wrap, img, hit.px, hit.py, hit.px, hit.py, "pixel");
    } else {
      mark(wrap, img, hit.tileCol * (m.tile[1] + m.gap) + hit.xd, hit.tileRow * (m.tile[0] + m.gap) + hit.yd,
           hit.tileCol * (m.tile[1] + m.gap) + hit.xd, hit.tileRow * (m.tile[0] + m.gap) + hit.yd, "pixel");
    }
    const head = document.createElement("div");
    head.className = "insp-head";
    const what = m.kind === "vector"
      ? "value " + hit.index
      : "channel " + hit.channel + " · row " + rangeText(...hit.rows) + ", col " + rangeText(...hit.cols);
    head.innerHTML = "<h4>" + esc(layer.name) + " · " + what + "</h4><span class='sub'>" +
      esc(valueText(img, hit.px, hit.py, m.scale)) + "</span>";
    const close = document.createElement("button");
    close.type = "button"; close.className = "insp-close"; close.textContent = "✕";
    close.setAttribute("aria-label", "Close"); close.addEventListener("click", closeInspector);
    head.appendChild(close);
    box.appendChild(head);
    const cols = document.createElement("div");
    cols.className = "insp-cols";
    box.appendChild(cols);
    const notes = [];
    if (m.kind === "maps" && m.factor > 1) {
      notes.push("This picture is downsampled ×" + m.factor + ": the pixel stands for rows " +
        rangeText(...hit.rows) + ", cols " + rangeText(...hit.cols) + " of the full " + m.map.join("×") + " map.");
    }

    // 1. The input region (receptive field).
    const onImage = f && DATA.imageInput && f.input === DATA.imageInput && DATA.runs[run].picture;
    if (f && onImage && f.start && m.kind === "maps") {
      const r = fieldRect(f, hit.rows, hit.cols);
      const [H, W] = f.extent;
      const inside = r[0] >= 0 && r[1] >= 0 && r[2] < H && r[3] < W;
      const cap = "Input <code>" + esc(f.input) + "</code>: rows " + rangeText(r[0], r[2]) + ", cols " +
        rangeText(r[1], r[3]) + " (" + (r[2] - r[0] + 1) + "×" + (r[3] - r[1] + 1) + "; field " +
        f.size.join("×") + ", jump " + f.jump.map(fmt).join("×") + ")" +
        (inside ? "" : " — part of it is padding outside the image; the part inside is marked");
      const fig = inputFigure(run, r, cap, false);
      if (fig) cols.appendChild(fig);
    } else if (f && onImage && (f.whole || !f.jump)) {
      const [H, W] = f.extent;
      const fig = inputFigure(run, [0, 0, H - 1, W - 1],
        "Input <code>" + esc(f.input) + "</code>: " + (f.whole ? "every pixel (the whole image)" :
          "the spatial layout is gone: a field of " + f.size.join("×")) + ".", true);
      if (fig) cols.appendChild(fig);
    } else if (!f) {
      notes.push("No receptive field is known for this output (explain has no rule past some layer).");
    }

    // 2. The window in the previous layer's output.
    const w = layer.window;
    if (w && w.kind !== "none") {
      prevFigure(w, hit, m, run, cols, notes);
    }
    const p = document.createElement("p");
    p.className = "insp-text";
    p.innerHTML = notes.join(" ");
    box.appendChild(p);
    $(".inspector-slot", sec).appendChild(box);
  }

  function prevFigure(w, hit, m, run, cols, notes) {
    const c = m.kind === "maps" ? hit.channel : hit.index;
    const srcs = w.sources;
    const first = srcs.find(s => s) || null;
    let bottomChannels = 0, view = null, source = null;
    if (first) {
      source = first;
      view = DATA.layers[first[0]] && DATA.layers[first[0]].tops[first[1]].maps[run];
      bottomChannels = view ? view.channels : 0;
    }
    const [k, c0, c1] = channelsRead(w, c, bottomChannels);
    if (w.channels === "concat") {
      source = srcs[k];
      view = source && DATA.layers[source[0]] ? DATA.layers[source[0]].tops[source[1]].maps[run] : null;
    }
    const bottomName = w.bottoms[k] || w.bottoms[0];
    const srcLayer = source ? DATA.layers[source[0]] : null;
    const from = srcLayer ? "<a href='#L" + source[0] + "'>" + esc(srcLayer.name) + "</a>" : "<code>" + esc(bottomName) + "</code>";
    if (w.kind === "whole" || m.kind !== "maps") {
      notes.push("It reads <b>all</b> of " + from + (w.channels === "same" ? " (its own channel: global pooling)" : "") + ".");
      return;
    }
    const rows = windowRange(w, 0, hit.rows[0], hit.rows[1]);
    const colsR = windowRange(w, 1, hit.cols[0], hit.cols[1]);
    const nCh = c1 - c0 + 1;
    let chText = nCh === 1 ? "channel " + c0 : "channels " + c0 + "–" + c1;
    if (w.channels === "all") chText = "all " + nCh + " channels";
    if (w.channels === "group") chText += " (its group)";
    let kText = w.kind === "same" ? "the same position" :
      (w.deconv ? "the inputs whose stamps cover it" : w.kernel.join("×") + " window");
    if (w.kind === "window" && w.dilation.some(d => d > 1)) kText += " (taps " + w.dilation[0] + " apart)";
    const cap = "From " + from + ": " + kText + ", rows " + rangeText(...rows) + ", cols " + rangeText(...colsR) +
      " of " + chText + (w.bottoms.length > 1 && w.channels !== "concat" ? " (and the same of " +
        w.bottoms.slice(1).map(b => "<code>" + esc(b) + "</code>").join(", ") + ")" : "");
    if (!view || view.kind !== "maps") {
      if (!source && DATA.runs[run].picture && bottomName === DATA.imageInput) {
        const fig = inputFigure(run, [rows[0], colsR[0], rows[1], colsR[1]], cap, false);
        if (fig) { fig.classList.add("insp-prev"); cols.appendChild(fig); }
      } else notes.push(cap + ".");
      return;
    }
    const firstShown = Math.max(c0, 0);
    if (firstShown >= view.shown) {
      notes.push(cap + "; channel " + firstShown + " is not drawn (size budget).");
      return;
    }
    const page = Math.floor(firstShown / view.perPage);
    const pageImg = document.getElementById("map-" + source[0] + "-" + source[1] + "-" + run + "-" + page);
    if (!pageImg) { notes.push(cap + "."); return; }
    const img = cloneImg(srcOf(pageImg), dim(pageImg, "width"), dim(pageImg, "height"));
    const [fig, pic] = figure("insp-prev", cap + (view.pages > 1 ? " — page " + (page + 1) + " of its pictures" : ""), img);
    const [th, tw] = view.tile, g = view.gap, fb = view.factor, [Hb, Wb] = view.map;
    const onPage = Math.min(view.perPage, view.shown - page * view.perPage);
    const pcols = Math.min(view.cols, onPage);
    const y0 = Math.max(0, rows[0]), y1 = Math.min(Hb - 1, rows[1]);
    const x0 = Math.max(0, colsR[0]), x1 = Math.min(Wb - 1, colsR[1]);
    if (y1 >= y0 && x1 >= x0) {
      for (let ch = Math.max(c0, page * view.perPage); ch <= Math.min(c1, page * view.perPage + onPage - 1); ch++) {
        const i = ch - page * view.perPage;
        const r = Math.floor(i / pcols), cc = i % pcols;
        const ox = cc * (tw + g), oy = r * (th + g);
        const d = mark(pic, img, ox + Math.floor(x0 / fb), oy + Math.floor(y0 / fb),
                       ox + Math.floor(x1 / fb), oy + Math.floor(y1 / fb), "win");
        d.dataset.channel = ch;
      }
    } else {
      notes.push("The window lies in the padding.");
    }
    cols.appendChild(fig);
  }

  document.addEventListener("click", ev => {
    const img = ev.target;
    if (!(img instanceof HTMLImageElement) || !img.classList.contains("maps")) return;
    const [px, py] = natural(img, ev);
    const hit = mapHit(img, px, py);
    if (hit) inspect(img, hit);
  });

  /* -- keyboard ----------------------------------------------------------- */
  function visibleSections() {
    return sections.filter(s => {
      const a = links.get(s.dataset.index);
      return !a || !a.parentElement.hidden;
    });
  }
  document.addEventListener("keydown", ev => {
    const tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const list = visibleSections();
    const at = list.findIndex(s => s.dataset.index === current);
    if (ev.key === "j" || ev.key === "k") {
      const next = list[Math.max(0, Math.min(list.length - 1, at + (ev.key === "j" ? 1 : -1)))];
      if (next) openLayer(next.dataset.index, true);
    } else if (ev.key === "/") {
      ev.preventDefault(); filter && filter.focus();
    } else if (ev.key === "g") {
      $("#overview").scrollIntoView({ behavior: "smooth" });
    } else if (ev.key === "Escape") {
      closeInspector();
    } else if (ev.key === "[" || ev.key === "]") {
      const sec = document.getElementById("L" + current);
      const run = sec && $$(".maps-block .run", sec).find(r => !r.hidden && $(".pager", r));
      if (run) showPage(run, pageOf(run) + (ev.key === "]" ? 1 : -1));
    } else if (/^[1-9]$/.test(ev.key) && Number(ev.key) <= DATA.runs.length && DATA.runs.length > 1) {
      setRun(Number(ev.key) - 1);
    }
  });

  if (location.hash && /^#L\d+$/.test(location.hash)) setCurrent(location.hash.slice(2));
  window.kaffeViz = { data: DATA, openLayer, setRun, showPage, fieldRect };
})();
