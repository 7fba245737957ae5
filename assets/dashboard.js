/* The page's own browser-side callbacks (Dash loads every script in assets/). */

(function () {
  // JSON with sorted keys and undefined as null: the same text for equal settings,
  // whichever side (the server's compute.settings, or settings() here) built them.
  function canonical(value) {
    if (value === undefined || value === null) { return "null"; }
    if (Array.isArray(value)) { return "[" + value.map(canonical).join(",") + "]"; }
    if (typeof value === "object") {
      return "{" + Object.keys(value).sort()
        .map((key) => JSON.stringify(key) + ":" + canonical(value[key])).join(",") + "}";
    }
    return JSON.stringify(value);
  }

  // The page's values a result is computed from: dashboard.callbacks.compute.settings.
  function settings(modelRef, dataRef, method, values, valueIds, ruleNames, ruleNameIds,
                    ruleParams, ruleParamIds, outputs, rows, referenceRef) {
    const raw = {};
    valueIds.forEach((id, i) => { raw[id.name] = values[i]; });
    raw.reference_sha = referenceRef ? referenceRef.sha : null;
    if (ruleNameIds.length) {
      raw.rule_name = {};
      ruleNameIds.forEach((id, i) => { raw.rule_name[id.layer] = ruleNames[i]; });
      raw.rule_param = {};
      ruleParamIds.forEach((id, i) => { raw.rule_param[id.layer] = ruleParams[i]; });
    }
    return {model: modelRef, data: dataRef, method: method, raw: raw,
            outputs: [...(outputs || [])].sort(), rows: rows};
  }

  const WORDS = {method: "the method", raw: "its parameters", outputs: "the outputs",
                 rows: "the rows"};
  const DOWNLOADS = 4;

  // The stale notice, the result reference and the downloads' disabled flags for the
  // page's settings now: a result for another model or data is dropped, one for other
  // method settings marked; downloads only while the result is for the page's settings.
  function staleness(modelRef, dataRef, method, values, ruleNames, ruleParams, outputs, rows,
                     referenceRef, shown, valueIds, ruleNameIds, ruleParamIds) {
    const noUpdate = window.dash_clientside.no_update;
    const was = shown && typeof shown.settings === "object" ? shown.settings : null;
    if (!was) {
      return [null, false, noUpdate, ...Array(DOWNLOADS).fill(!shown)];
    }
    const now = settings(modelRef, dataRef, method, values, valueIds, ruleNames, ruleNameIds,
                         ruleParams, ruleParamIds, outputs, rows, referenceRef);
    if (canonical([was.model, was.data]) !== canonical([now.model, now.data])) {
      return [null, false, null, ...Array(DOWNLOADS).fill(true)];
    }
    const changed = Object.keys(WORDS).filter((k) => canonical(was[k]) !== canonical(now[k]));
    if (changed.length) {
      const text = "The result below is for other settings (" +
        changed.map((k) => WORDS[k]).join(", ") + " changed since). Press Compute to update it.";
      return [text, true, noUpdate, ...Array(DOWNLOADS).fill(true)];
    }
    return [null, false, noUpdate, ...Array(DOWNLOADS).fill(false)];
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    innsight: {staleness: staleness},
  });
})();
