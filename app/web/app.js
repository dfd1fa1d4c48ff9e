// moodspace page: three tasks on the valence/arousal plane. Plain ES modules, no build step, no CDN.
import {drawAxes, drawCursor, drawDots, drawMarker, drawPath, drawReading, el, pointFromEvent, timeColour, toX,
  toY} from "/static/plane.js";

const $ = (id) => document.getElementById(id);
const status = (text) => { $("status").textContent = text; };
const fmt = (x, digits = 2) => Number(x).toFixed(digits);

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail
      : (body.detail || []).map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    throw new Error(detail || `request failed (${response.status})`);
  }
  return body;
}

// Tabs ------------------------------------------------------------------------------------------------------------
function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (tab) => {
    for (const other of tabs) {
      const chosen = other === tab;
      other.setAttribute("aria-selected", String(chosen));
      other.tabIndex = chosen ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !chosen;
    }
    tab.focus();
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const step = {ArrowRight: 1, ArrowLeft: -1}[event.key];
      if (step) select(tabs[(i + step + tabs.length) % tabs.length]);
    });
  });
}

// Result lists ----------------------------------------------------------------------------------------------------
function trackItem(track) {
  const item = document.createElement("li");
  item.className = "track";
  const head = document.createElement("div");
  head.className = "track-head";
  const title = document.createElement("strong");
  title.textContent = track.title;
  const artist = document.createElement("span");
  artist.textContent = track.artist ? ` — ${track.artist}` : "";
  head.append(title, artist);
  const parts = document.createElement("p");
  parts.className = "parts";
  const alike = track.likeness === null || track.likeness === undefined ? "" :
    `${(100 * track.likeness).toFixed(1)}% alike · `;  // tracks that feel like a track are ranked by it
  parts.textContent = alike +
    `score ${fmt(track.score, 3)} · corr ${fmt(track.corr, 3)} · −KL ${fmt(track.neg_kl, 2)}` +
    ` · valence ${fmt(track.valence)} · arousal ${fmt(track.arousal)}` +
    (track.va_distance === undefined ? "" : ` · ${fmt(track.va_distance)} from the request`);
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.preload = "none";
  audio.src = track.audio_url;  // a span's URL ends in #t=start,end: the player starts there
  audio.setAttribute("aria-label", `Play ${track.title}`);
  item.append(head, parts);
  if (track.start_s !== null && track.start_s !== undefined) {
    const moment = document.createElement("p");
    moment.className = "moment";
    moment.textContent = `best moment ${clock(track.start_s)}–${clock(track.end_s)}`;
    item.append(moment);
  }
  const like = document.createElement("button");
  like.type = "button";
  like.className = "secondary like";
  like.textContent = "More like this";
  like.setAttribute("aria-label", `Tracks that feel like ${track.title}`);
  like.addEventListener("click", () => likeTrack(track));
  item.append(audio, like);
  return item;
}

// Tracks that feel like one of the results (the API's `like_track`: ranked by how alike their class probabilities
// are, or by its own embedding where the model has no categorical heads), shown on the
// emotion -> music tab with that tab's number of tracks, lam and filters.
async function likeTrack(track) {
  $("tab-e2m").click();
  const body = {like_track: track.track_id, k: Number($("e2m-k").value) || 8};
  if (!$("e2m-lam-default").checked) body.lam = Number($("e2m-lam").value);
  const filters = readFilters();
  if (Object.keys(filters).length) body.filters = filters;
  status(`Searching for tracks that feel like ${track.title}…`);
  try {
    const answer = await api("/v1/emotion-to-music", {method: "POST", headers: {"content-type": "application/json"},
                                                       body: JSON.stringify(body)});
    showTracks($("e2m-results"), answer.results, answer.reason);
    redrawE2M(answer.results);
    drawMarker($("e2m-plane").querySelector("g.layer"), answer.query, track.title);
    $("e2m-caption").textContent = `Tracks that feel like “${track.title}” (valence ${fmt(answer.query.valence)}, ` +
      `arousal ${fmt(answer.query.arousal)}).`;
    status(answer.reason ? `No tracks: ${answer.reason}.` : `${answer.results.length} tracks that feel like ${track.title}.`);
  } catch (error) { status(`Error: ${error.message}`); }
}

function clock(seconds) {
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function showTracks(list, tracks, reason = null) {
  list.replaceChildren(...tracks.map(trackItem));
  if (!tracks.length) list.replaceChildren(Object.assign(document.createElement("li"),
    {textContent: reason ? `No tracks: ${reason}.` : "No tracks in the catalogue yet."}));
}

// Emotion -> music: draw a curve ----------------------------------------------------------------------------------
const curve = [];
let cursor = {valence: 0, arousal: 0};
let drawing = false;

const emotionVA = new Map();  // named emotion -> {valence, arousal}

function redrawE2M(results = []) {
  const layer = drawAxes($("e2m-plane"));
  const emotion = $("e2m-emotion").value;
  drawPath(layer, curve, "curve");
  curve.forEach((p, i) => el("circle", {cx: toX(p.valence), cy: toY(p.arousal), r: 2.2,
                                        fill: timeColour(i, curve.length)}, layer));
  drawDots(layer, results.map((r) => ({valence: r.valence, arousal: r.arousal})), "hit",
           results.map((r) => r.title));
  if (emotion && emotionVA.has(emotion)) drawMarker(layer, emotionVA.get(emotion), emotion);
  if (document.activeElement === $("e2m-plane")) drawCursor(layer, cursor);
  const va = emotionVA.get(emotion);
  $("e2m-caption").textContent = emotion && va
    ? `Emotion “${emotion}”: valence ${fmt(va.valence)}, arousal ${fmt(va.arousal)}.`
    : curve.length
    ? `Curve of ${curve.length} point${curve.length > 1 ? "s" : ""}, from valence ${fmt(curve[0].valence)}, ` +
      `arousal ${fmt(curve[0].arousal)} to valence ${fmt(curve.at(-1).valence)}, arousal ${fmt(curve.at(-1).arousal)}.`
    : "No curve yet.";
}

function addPoint(p) {
  const last = curve.at(-1);
  if (!last || Math.hypot(last.valence - p.valence, last.arousal - p.arousal) > 0.03) curve.push(p);
  if (curve.length > 400) curve.shift();
}

function setupDrawing() {
  const plane = $("e2m-plane");
  plane.addEventListener("pointerdown", (event) => {
    drawing = true;
    curve.length = 0;
    plane.setPointerCapture(event.pointerId);
    addPoint(pointFromEvent(plane, event));
    $("e2m-emotion").value = "";
    redrawE2M();
  });
  plane.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    addPoint(pointFromEvent(plane, event));
    redrawE2M();
  });
  plane.addEventListener("pointerup", () => { drawing = false; });
  plane.addEventListener("focus", () => redrawE2M());
  plane.addEventListener("blur", () => redrawE2M());
  plane.addEventListener("keydown", (event) => {
    const moves = {ArrowLeft: [-0.05, 0], ArrowRight: [0.05, 0], ArrowUp: [0, 0.05], ArrowDown: [0, -0.05]};
    if (moves[event.key]) {
      const [dv, da] = moves[event.key];
      cursor = {valence: Math.max(-1, Math.min(1, cursor.valence + dv)),
                arousal: Math.max(-1, Math.min(1, cursor.arousal + da))};
    } else if (event.key === "Enter" || event.key === " ") {
      curve.push({...cursor});
      $("e2m-emotion").value = "";
    } else if (event.key === "Backspace" || event.key === "Delete") {
      curve.pop();
    } else {
      return;
    }
    event.preventDefault();
    redrawE2M();
  });
  $("e2m-emotion").addEventListener("change", () => {
    if ($("e2m-emotion").value) curve.length = 0;  // the emotion replaces the drawing: one query on the plane
    redrawE2M();
  });
  $("e2m-clear").addEventListener("click", () => { curve.length = 0; redrawE2M(); status("Curve cleared."); });
  const lam = $("e2m-lam"), useDefault = $("e2m-lam-default");
  const showLam = () => { $("e2m-lam-out").textContent = useDefault.checked ? "model default" : lam.value; };
  lam.addEventListener("input", () => { useDefault.checked = false; showLam(); });
  useDefault.addEventListener("change", showLam);
  $("e2m-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {k: Number($("e2m-k").value) || 8};
    if (!useDefault.checked) body.lam = Number(lam.value);
    const emotion = $("e2m-emotion").value;
    const seconds = Number($("e2m-duration").value) || 60;
    if (emotion) body.emotion = emotion;
    else if (curve.length === 1) body.point = curve[0];
    else if (curve.length > 1) body.curve = curve.map((p, i) => ({t: i * seconds / (curve.length - 1), ...p}));
    else { status("Draw a curve, click a point or pick an emotion first."); return; }
    const filters = readFilters();
    if (Object.keys(filters).length) body.filters = filters;
    if ($("e2m-span").checked) {
      body.span = true;
      if (!body.curve) body.span_seconds = seconds;
    }
    status("Searching…");
    try {
      const answer = await api("/v1/emotion-to-music", {method: "POST", headers: {"content-type": "application/json"},
                                                         body: JSON.stringify(body)});
      showTracks($("e2m-results"), answer.results, answer.reason);
      redrawE2M(answer.results);
      status(answer.reason ? `No tracks: ${answer.reason}.` : `${answer.results.length} tracks (lam ${fmt(answer.lam)}).`);
    } catch (error) { status(`Error: ${error.message}`); }
  });
}

// The filter fields that are filled in, as the API's `filters`.
function readFilters() {
  const filters = {};
  const number = (id, key) => { const v = $(id).value.trim(); if (v !== "") filters[key] = Number(v); };
  number("f-tempo-min", "tempo_min");
  number("f-tempo-max", "tempo_max");
  number("f-duration-max", "duration_max");
  number("f-year-min", "year_min");
  number("f-year-max", "year_max");
  if ($("f-mode").value) filters.mode = $("f-mode").value;
  if ($("f-key").value) filters.key = $("f-key").value;
  if ($("f-genre").value.trim()) filters.genre = $("f-genre").value.trim();
  const list = (id) => $(id).value.split(",").map((a) => a.trim()).filter(Boolean);
  if (list("f-tags").length) filters.tags = list("f-tags");
  if (list("f-artists").length) filters.artists = list("f-artists");
  if (list("f-exclude").length) filters.exclude_artists = list("f-exclude");
  return filters;
}

// Story -> music ----------------------------------------------------------------------------------------------------
function showStory(answer) {
  const layer = drawAxes($("t2m-plane"));
  const points = answer.sentences.map((s) => ({valence: s.valence, arousal: s.arousal}));
  drawPath(layer, points, "curve");
  points.forEach((p, i) => el("circle", {cx: toX(p.valence), cy: toY(p.arousal), r: 3,
                                         fill: timeColour(i, points.length)}, layer));
  const box = $("t2m-results");
  const segments = answer.segments || [{start: 0, end: answer.sentences.length, valence: NaN, arousal: NaN,
                                         sentences: answer.sentences.map((s) => s.text), results: answer.results}];
  box.replaceChildren(...segments.map((segment, i) => {
    const section = document.createElement("section");
    section.className = "cue";
    const heading = document.createElement("h3");
    heading.textContent = answer.segments
      ? `Cue ${i + 1}: sentences ${segment.start + 1}–${segment.end} (valence ${fmt(segment.valence)}, ` +
        `arousal ${fmt(segment.arousal)})`
      : "The whole story";
    const quote = document.createElement("blockquote");
    quote.textContent = segment.sentences.join(" ");
    const list = document.createElement("ol");
    list.className = "results";
    showTracks(list, segment.results, answer.reason);
    section.append(heading, quote, list);
    return section;
  }));
}

function setupStory() {
  $("t2m-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("t2m-text").value;
    if (!text.trim()) { status("Paste a story first."); return; }
    const body = {text, k: Number($("t2m-k").value) || 3,
                  mode: document.querySelector('input[name="t2m-mode"]:checked').value,
                  bridge: document.querySelector('input[name="t2m-bridge"]:checked').value};
    if ($("t2m-span").checked) {
      body.span = true;
      body.seconds_per_sentence = Number($("t2m-seconds").value) || 4;
    }
    status("Reading the story…");
    try {
      const answer = await api("/v1/text-to-music", {method: "POST", headers: {"content-type": "application/json"},
                                                      body: JSON.stringify(body)});
      showStory(answer);
      status(`${answer.sentences.length} sentences` +
             (answer.segments ? `, ${answer.segments.length} cues` : "") +
             (answer.reason ? `. No tracks: ${answer.reason}.` : "."));
    } catch (error) { status(`Error: ${error.message}`); }
  });
}

// Music -> emotion ------------------------------------------------------------------------------------------------
const REFERENCE_TRACKS = 5;  // catalogue tracks that feel like the uploaded clip (a reference track)

function setupAnalysis() {
  $("m2e-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("m2e-file").files[0];
    if (!file) { status("Choose an audio file first."); return; }
    const form = new FormData();
    form.append("file", file);
    for (const field of ["title", "artist", "lyrics"]) {
      const value = $(`m2e-${field}`).value.trim();
      if (value) form.append(field, value);
    }
    drawAxes($("m2e-plane"));  // the previous track's results go before this one's arrive (or fail)
    $("m2e-summary").textContent = "";
    $("m2e-emotions").replaceChildren();
    $("m2e-readings").tBodies[0].replaceChildren();
    $("m2e-tracks").replaceChildren();
    status(`Analysing ${file.name}…`);
    try {
      const answer = await api(`/v1/music-to-emotion?k=8&tracks=${REFERENCE_TRACKS}`, {method: "POST", body: form});
      const layer = drawAxes($("m2e-plane"));
      const points = answer.curve.map((p) => ({valence: p.valence, arousal: p.arousal}));
      drawPath(layer, points, "curve");
      points.forEach((p, i) => el("circle", {cx: toX(p.valence), cy: toY(p.arousal), r: 2,
                                             fill: timeColour(i, points.length)}, layer));
      drawReading(layer, answer.valence, answer.arousal, answer.valence_std, answer.arousal_std);
      $("m2e-summary").textContent = `${file.name}: ${fmt(answer.duration_s, 1)} s; valence ${fmt(answer.valence)} ` +
        `± ${fmt(answer.valence_std)}, arousal ${fmt(answer.arousal)} ± ${fmt(answer.arousal_std)}; ` +
        `${answer.key} ${answer.mode}, ${answer.tempo_bpm === null ? "no clear beat" : `${fmt(answer.tempo_bpm, 0)} BPM`}.`;
      $("m2e-emotions").replaceChildren(...answer.emotions.map((e) => Object.assign(document.createElement("li"), {
        textContent: `${e.name} — score ${fmt(e.score, 3)} · corr ${fmt(e.corr, 3)} · −KL ${fmt(e.neg_kl, 2)}`})));
      showReadings(answer.readings);
      showTracks($("m2e-tracks"), answer.tracks || []);
      status("Analysis done.");
    } catch (error) { status(`Error: ${error.message}`); }
  });
}

// One row per part of the song the service read: the sound, the lyrics and the title/artist if given, and the
// fused reading of them all (the song model's, where it read the lyrics with the sound).
const READING_NAMES = {audio: "Sound", lyrics: "Lyrics", context: "Title and artist", fused: "All together"};
const SONG_MODEL_NAME = "Sound and lyrics together (song model)";

function showReadings(readings) {
  const body = $("m2e-readings").tBodies[0];
  if (!readings) { body.replaceChildren(); return; }
  const names = {...READING_NAMES, ...(readings.fused_by === "song model" ? {fused: SONG_MODEL_NAME} : {})};
  body.replaceChildren(...Object.entries(names).filter(([key]) => readings[key]).map(([key, name]) => {
    const row = document.createElement("tr");
    row.dataset.reading = key;
    for (const text of [name, fmt(readings[key].valence), fmt(readings[key].arousal)]) {
      row.append(Object.assign(document.createElement("td"), {textContent: text}));
    }
    return row;
  }));
}

async function init() {
  setupTabs();
  setupDrawing();
  setupStory();
  setupAnalysis();
  redrawE2M();
  drawAxes($("t2m-plane"));
  drawAxes($("m2e-plane"));
  try {
    const emotions = await api("/v1/emotions");
    for (const e of emotions.sort((a, b) => a.name.localeCompare(b.name))) {
      $("e2m-emotion").append(new Option(`${e.name} (${fmt(e.valence)}, ${fmt(e.arousal)})`, e.name));
      emotionVA.set(e.name, {valence: e.valence, arousal: e.arousal});
    }
    const ready = await api("/readyz");
    $("model-version").textContent = `Model ${ready.model_version}; ${ready.index_size} tracks in the catalogue.`;
  } catch (error) { status(`The service is not ready: ${error.message}`); }
}

init();
