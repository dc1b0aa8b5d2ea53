// fastnn serve: the drawing pad and the live prediction.  No libraries, nothing from the internet.
"use strict";

(function () {
  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d");
  const seen = document.getElementById("seen").getContext("2d");
  const prediction = document.getElementById("prediction");
  const status = document.getElementById("status");
  const bars = document.getElementById("bars");
  const INK = 22;  // stroke width on the 280 px pad: ~2 px once scaled like an MNIST digit

  // drawn: strokes changes so far; shown: the change whose prediction is on screen.
  const state = { drawn: 0, shown: 0, clears: 0, busy: false, queued: false, errors: 0 };
  window.fastnnState = state;  // read by the browser tests
  let rows = [];

  function blank() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, pad.width, pad.height);
    seen.fillStyle = "#000";
    seen.fillRect(0, 0, 28, 28);
  }

  function makeBars(names) {
    bars.textContent = "";
    rows = names.map(function (name, k) {
      const li = document.createElement("li");
      li.id = "class-" + k;
      const label = document.createElement("span");
      label.className = "name";
      label.textContent = name;
      label.title = name;
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.id = "bar-" + k;
      track.appendChild(fill);
      const value = document.createElement("span");
      value.className = "value";
      value.id = "prob-" + k;
      value.textContent = "";
      li.append(label, track, value);
      bars.appendChild(li);
      return { li: li, fill: fill, value: value };
    });
  }

  function showResult(result) {
    prediction.textContent = result.name;
    prediction.dataset.label = String(result.label);
    const probs = result.probabilities;
    let best = 0;
    probs.forEach(function (p, k) { if (p > probs[best]) best = k; });
    rows.forEach(function (row, k) {
      const p = probs[k];
      row.fill.style.width = (100 * p).toFixed(1) + "%";
      row.value.textContent = (100 * p).toFixed(1) + "%";
      row.li.classList.toggle("top", k === best);
    });
    const img = seen.createImageData(28, 28);
    result.pixels.forEach(function (v, i) {
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
      img.data[4 * i + 3] = 255;
    });
    seen.putImageData(img, 0, 0);
  }

  function resetResult() {
    prediction.textContent = "\u2013";
    delete prediction.dataset.label;
    rows.forEach(function (row) {
      row.fill.style.width = "0";
      row.value.textContent = "";
      row.li.classList.remove("top");
    });
  }

  // One request at a time; strokes made meanwhile are sent as one snapshot when it returns.
  // A Clear while a request is out makes its answer stale: it is dropped.
  async function predict() {
    if (state.busy) { state.queued = true; return; }
    state.busy = true;
    const version = state.drawn, clears = state.clears;
    let result = null, ok = false, failure = null;
    try {
      const response = await fetch("/api/predict", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ image: pad.toDataURL("image/png") }),
      });
      ok = response.ok;
      result = await response.json();
      if (!ok) failure = result.error || ("error " + response.status);
    } catch (err) {
      failure = "the server did not answer (" + err.message + ")";
    }
    if (clears === state.clears) {
      if (ok) {
        showResult(result);
        status.textContent = "";
      } else {
        resetResult();
        status.textContent = failure;
        state.errors += 1;
      }
      state.shown = version;
    }
    state.busy = false;
    if (state.queued) { state.queued = false; predict(); }
  }

  // Drawing: pointer events cover mouse, pen and touch.
  let last = null;
  function point(event) {
    const box = pad.getBoundingClientRect();
    return [(event.clientX - box.left) * pad.width / box.width,
            (event.clientY - box.top) * pad.height / box.height];
  }
  function stroke(from, to) {
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = INK;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    if (from[0] === to[0] && from[1] === to[1]) {
      // a zero-length line draws nothing: a tap is a round dot
      ctx.fillStyle = "#fff";
      ctx.arc(from[0], from[1], INK / 2, 0, 2 * Math.PI);
      ctx.fill();
    } else {
      ctx.moveTo(from[0], from[1]);
      ctx.lineTo(to[0], to[1]);
      ctx.stroke();
    }
    state.drawn += 1;
  }
  pad.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) return;
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(last, last);
    predict();
  });
  pad.addEventListener("pointermove", function (event) {
    if (last === null) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    (events.length ? events : [event]).forEach(function (e) {
      const p = point(e);
      stroke(last, p);
      last = p;
    });
    predict();
  });
  function lift() { if (last !== null) { last = null; predict(); } }
  pad.addEventListener("pointerup", lift);
  pad.addEventListener("pointercancel", lift);

  document.getElementById("clear").addEventListener("click", function () {
    blank();
    resetResult();
    status.textContent = "";
    state.clears += 1;
    state.queued = false;
    state.shown = state.drawn;  // nothing to predict on a blank pad
  });

  blank();
  makeBars(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
  fetch("/api/model").then(function (r) { return r.json(); }).then(function (info) {
    makeBars(info.class_names);
    const parts = ["model " + info.shape.join("-")];
    if (info.file) parts.unshift(info.file);
    if (info.dataset) parts.push("trained on " + info.dataset);
    if (info.accuracy && typeof info.accuracy === "object") {
      Object.keys(info.accuracy).forEach(function (split) {
        const a = Number(info.accuracy[split]);
        if (isFinite(a)) parts.push(split + " accuracy " + (100 * a).toFixed(2) + "%");
      });
    }
    document.getElementById("model").textContent = parts.join(" \u00b7 ");
  }).catch(function () {
    document.getElementById("model").textContent = "could not read the model's details";
  });
})();
