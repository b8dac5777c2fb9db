// Drag-to-presentation latency from Chrome's own trace, for the browser benchmark: recording a
// trace over CDP, and matching each pointer move to the first frame on screen that shows the
// digit it asked for.
//
// The events used (Chromium 156; every timestamp is the trace clock, in microseconds):
// - `InputLatency::MouseMove` (category latencyInfo; an async begin in the browser process, one
//   per mouse move): its begin is the input event's own timestamp (the ORIGINAL latency
//   component), the time the user moved the mouse.
// - the page's user-timing mark DIGIT_MARK (category blink.user_timing), dropped on the
//   renderer's main thread just after a new digit is on its canvas (www/js/digit.js).
// - `AnimationFrame` (devtools.timeline; begin on the renderer's main thread) with args.id, its
//   `AnimationFrame::Render` (the start of the rendering update: style, layout, paint, commit), and
//   `AnimationFrame::Presentation` (an instant at the time the frame was presented, with the
//   same args.id and the begin_frame_id.sequence_number of the frame that was presented: a frame
//   dropped by the compositor is presented by a later one, and this instant says when; one that
//   changed nothing on screen is "presented" at once with sequence number 0).
// - `PipelineReporter` (disabled-by-default-devtools.timeline.frame; async on the renderer's
//   compositor thread, per frame_sequence): ends when the frame is presented; a cross-check.
//
// A digit drawn before a rendering update starts is in that update's commit, so a move is matched
// to: its mark (the first after the move), the first AnimationFrame::Render after the mark, the
// AnimationFrame it belongs to, and that frame's Presentation. Its latency is Presentation minus
// the move's input timestamp.

/** The user-timing mark the page drops each time it shows a new digit (DIGIT_MARK in
 * www/js/digit.js: not imported, as node would parse the page's .js modules twice, warning). */
export const DIGIT_MARK = "digit-drawn";
/** The mark compare mode drops when the second model's digit is on its canvas (www/js/compare.js). */
export const DIGIT_2_MARK = `${DIGIT_MARK}-2`;

export const CATEGORIES = [
  "latencyInfo", "blink.user_timing", "devtools.timeline", "disabled-by-default-devtools.timeline.frame",
];

/** Runs `fn` under a trace of CATEGORIES on `cdp` (a CDP session of the page); returns the
 * trace events. */
export async function traced(cdp, fn) {
  await cdp.send("Tracing.start", {
    traceConfig: { includedCategories: CATEGORIES, recordMode: "recordAsMuchAsPossible" },
    transferMode: "ReturnAsStream",
  });
  const complete = new Promise((resolve) => cdp.once("Tracing.tracingComplete", resolve));
  try {
    await fn();
  } finally {
    await cdp.send("Tracing.end");
  }
  const { stream } = await complete;
  const chunks = [];
  for (;;) {
    const { data, eof, base64Encoded } = await cdp.send("IO.read", { handle: stream, size: 1 << 20 });
    chunks.push(base64Encoded ? Buffer.from(data, "base64").toString() : data);
    if (eof) break;
  }
  await cdp.send("IO.close", { handle: stream });
  const trace = JSON.parse(chunks.join(""));
  return Array.isArray(trace) ? trace : trace.traceEvents;
}

// The first index in `xs` (sorted by ts) whose ts is greater than `t`.
function firstAfter(xs, t) {
  let lo = 0, hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid].ts > t) hi = mid; else lo = mid + 1;
  }
  return lo;
}

const byTs = (a, b) => a.ts - b.ts;

/** Matches each move in `events` to the frame that first presents its digit. Returns
 * { inputs, marks, moves }: how many input events and marks the trace holds, and per matched
 * move { latency, work, toRender, toScreen, pipelineAgrees } in ms (input to presentation; input to
 * mark; mark to the rendering update; update start to presentation; whether the renderer's
 * PipelineReporter of that frame_sequence ends at the presentation too). A move is matched when
 * exactly one input precedes its mark since the previous mark, and its frame was presented. */
export function matchMoves(events, mark = DIGIT_MARK) {
  const marks = events.filter((e) => e.cat === "blink.user_timing" && e.name === mark).sort(byTs);
  const inputs = events.filter((e) => e.name === "InputLatency::MouseMove" && e.ph === "b").sort(byTs);
  if (!marks.length) return { inputs: inputs.length, marks: 0, moves: [] };
  // The page's renderer main thread: where the marks are.
  const { pid, tid } = marks[0];
  const onMain = (e) => e.pid === pid && e.tid === tid;
  const frames = events.filter((e) => e.name === "AnimationFrame" && e.ph === "b" && onMain(e)).sort(byTs);
  const renders = events.filter((e) => e.name === "AnimationFrame::Render" && e.ph === "b" && onMain(e)).sort(byTs);
  const presented = new Map();
  for (const e of events) {
    if (e.name === "AnimationFrame::Presentation" && e.pid === pid) presented.set(e.args.id, e);
  }
  // The renderer's PipelineReporter slices that ended presented: frame_sequence -> end ts.
  const open = new Map(), pipelineEnd = new Map();
  for (const e of events.filter((x) => x.name === "PipelineReporter" && x.pid === pid).sort(byTs)) {
    const key = `${e.tid}:${e.id2?.local ?? e.id}`;
    if (e.ph === "b") open.set(key, e.args.frame_reporter);
    else if (e.ph === "e" && open.has(key)) {
      const r = open.get(key);
      open.delete(key);
      if (/^STATE_PRESENTED/.test(r.state)) pipelineEnd.set(r.frame_sequence, e.ts);
    }
  }
  const moves = [];
  let prevMark = -Infinity;
  for (const m of marks) {
    const since = inputs.filter((i) => i.ts > prevMark && i.ts < m.ts);
    prevMark = m.ts;
    if (since.length !== 1) continue;
    const input = since[0];
    const render = renders[firstAfter(renders, m.ts)];
    if (!render) continue;
    const frame = frames[firstAfter(frames, render.ts) - 1];
    const shown = frame && presented.get(frame.args.id);
    // A frame that put nothing on screen is "presented" at once with sequence number 0.
    const seq = shown?.args.begin_frame_id?.sequence_number;
    if (!seq) continue;
    const end = pipelineEnd.get(seq);
    moves.push({
      latency: (shown.ts - input.ts) / 1000,
      work: (m.ts - input.ts) / 1000,
      toRender: (render.ts - m.ts) / 1000,
      toScreen: (shown.ts - render.ts) / 1000,
      pipelineAgrees: end != null && Math.abs(end - shown.ts) < 500,
    });
  }
  return { inputs: inputs.length, marks: marks.length, moves };
}
