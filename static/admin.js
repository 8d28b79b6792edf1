// The admin app inside Jira's iframe: tabs (Getting started, Identity providers, Service provider,
// Login activity) over the admin JSON API. No build step, no dependencies.
//
// Rules this file keeps:
// * every API call gets a fresh context token from Jira (AP.context.getToken()) and sends it as
//   `Authorization: JWT <token>`; there are no cookies and no other credentials;
// * no alert()/confirm()/prompt(), no top-level navigation: confirmations are inline, the IdP test
//   opens in a new window;
// * untrusted text is only ever set with textContent (never innerHTML);
// * the server's error message appears on the field it names (`error.field`);
// * a form with unsaved changes is never dropped silently.
(function () {
  "use strict";

  var app = document.getElementById("app");
  if (!app) return;
  // The service's base URL (it may have a path prefix); API paths are relative to it.
  var base = app.getAttribute("data-base") || "";
  // Pages without AP (the script did not load, or the page is not framed by Jira) cannot call the API.
  var AP = window.AP;

  // -----------------------------------------------------------------------------------------------
  // Small helpers

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // el("div", {class: "x", text: "..."}, [children]) — attributes are set as attributes, except
  // `text` (textContent) and functions (event handlers, as properties).
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = v;
      else if (typeof v === "function") node[k] = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function lozenge(text, kind) { return el("span", { class: "lozenge" + (kind ? " lozenge-" + kind : ""), text: text }); }

  function formatDate(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return iso;
    return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function formatDay(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return iso;
    return d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
  }

  function daysUntil(iso) { return Math.floor((new Date(iso).getTime() - Date.now()) / 86400000); }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  // An expiry badge: expired (red), within 30 days (yellow), otherwise valid (green).
  function expiryBadge(iso) {
    var days = daysUntil(iso);
    if (days < 0) return lozenge("Expired " + formatDay(iso), "removed");
    if (days <= 30) return lozenge("Expires in " + plural(days, "day", "days"), "moved");
    return lozenge("Valid until " + formatDay(iso), "success");
  }

  // Resizes Jira's iframe to the content (coalesced to one call per frame).
  var resizeQueued = false;
  function resize() {
    if (resizeQueued || !AP || typeof AP.resize !== "function") return;
    resizeQueued = true;
    window.requestAnimationFrame(function () {
      resizeQueued = false;
      try { AP.resize(); } catch (e) { /* not inside Jira */ }
    });
  }
  if (window.ResizeObserver) new ResizeObserver(resize).observe(document.body);

  function showAppError(message) {
    var box = $("#app-error");
    clear(box);
    box.appendChild(el("p", { text: message }));
    box.hidden = false;
    resize();
  }

  // -----------------------------------------------------------------------------------------------
  // The API

  function ApiError(status, body) {
    var e = (body && body.error) || {};
    this.status = status;
    this.code = e.code || "http_" + status;
    this.message = e.message || defaultMessage(status);
    this.field = e.field || null;
    this.candidates = e.candidates || null;
  }

  function defaultMessage(status) {
    if (status === 0) return "This service cannot be reached. Check your connection and try again.";
    if (status === 401) return "Your Jira session for this page has expired. Reload the page.";
    if (status === 403) return "Only Jira administrators can change these settings.";
    if (status >= 500) return "Something went wrong on the server (" + status + "). Try again in a moment.";
    return "The request failed (" + status + ").";
  }

  // A fresh context token for every call: they are short-lived, and Jira signs them for this user.
  function contextToken() {
    return new Promise(function (resolve, reject) {
      if (!AP || !AP.context || typeof AP.context.getToken !== "function") {
        reject(new ApiError(401, { error: { message: "This page only works inside Jira: open it from Apps → Manage apps." } }));
        return;
      }
      var done = false;
      var finish = function (token) { if (!done && token) { done = true; resolve(token); } };
      try {
        var maybe = AP.context.getToken(finish);
        if (maybe && typeof maybe.then === "function") maybe.then(finish, reject);
      } catch (e) {
        reject(e);
      }
    });
  }

  // api("GET", "/api/v1/idps") → parsed JSON (null for 204); options.text → the body as text.
  // Throws ApiError.
  function api(method, path, body, options) {
    options = options || {};
    return contextToken().then(function (token) {
      var init = { method: method, headers: { Authorization: "JWT " + token }, credentials: "omit", cache: "no-store" };
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      return fetch(base + path, init).catch(function () { throw new ApiError(0, null); });
    }).then(function (res) {
      if (res.status === 204) return null;
      var read = options.text && res.ok ? res.text() : res.text().then(function (t) {
        var data;
        try { data = t ? JSON.parse(t) : null; } catch (e) { return null; }
        // Paging cursors can exceed 2^53: keep `next_before` exactly as sent (a string of digits), since
        // a JavaScript number would round it and skip or repeat events.
        // (The last occurrence: the envelope's member follows the events.)
        var cursors = t.match(/"next_before"\s*:\s*-?\d+/g);
        if (data && data.next_before != null && cursors) data.next_before = cursors[cursors.length - 1].replace(/^.*:\s*/, "");
        return data;
      });
      return read.then(function (data) {
        if (!res.ok) throw new ApiError(res.status, data);
        return data;
      });
    });
  }

  function messageOf(err) {
    if (err instanceof ApiError) return err.message;
    return (err && err.message) || String(err);
  }

  // -----------------------------------------------------------------------------------------------
  // Downloads and the clipboard (both must work inside a sandboxed, cross-origin iframe)

  function download(filename, text, type) {
    var url = URL.createObjectURL(new Blob([text], { type: type }));
    var a = el("a", { href: url, download: filename, class: "offscreen" });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
  }

  function selectContents(node) {
    if (node.select) { node.focus(); node.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(node);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function statusNear(button) {
    var holder = button.parentElement;
    return holder && holder.querySelector(".copy-status");
  }

  function setCopyStatus(node, text, manual) {
    if (!node) return;
    node.textContent = text;
    node.classList.toggle("copy-manual", !!manual);
    clearTimeout(node._timer);
    if (!manual) node._timer = setTimeout(function () { node.textContent = ""; resize(); }, 4000);
    resize();
  }

  function legacyCopy(text) {
    var ta = el("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    ta.remove();
    return ok;
  }

  // Clipboard API first (Jira's iframe may not delegate clipboard-write), then the legacy command, and
  // when both fail the text is selected for the admin to copy with the keyboard.
  function copyFrom(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) return;
    var text = (target.value !== undefined ? target.value : target.textContent).trim();
    var status = statusNear(button);
    var fallback = function () {
      if (legacyCopy(text)) { setCopyStatus(status, "Copied"); button.focus(); return; }
      selectContents(target);
      setCopyStatus(status, "Copying is blocked here: the text is selected, press Ctrl+C (⌘C on a Mac).", true);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { setCopyStatus(status, "Copied"); }, fallback);
    } else {
      fallback();
    }
  }

  // -----------------------------------------------------------------------------------------------
  // Forms: reading values, dirty tracking, errors on fields

  function readForm(form) {
    var values = {};
    $$("input[name], select[name], textarea[name]", form).forEach(function (input) {
      if (input.closest("[hidden]")) return;
      if (input.type === "radio") { if (input.checked) values[input.name] = input.value; return; }
      if (input.type === "checkbox") { values[input.name] = input.checked; return; }
      if (input.type === "file") { values[input.name] = input.files && input.files[0] ? input.files[0].name + ":" + input.files[0].size : ""; return; }
      values[input.name] = input.value;
    });
    return values;
  }

  // A form whose values differ from its snapshot has unsaved changes.
  function snapshot(form) { form._snapshot = JSON.stringify(readForm(form)); }
  function isDirty(form) { return !!form._snapshot && !form.hidden && !form.closest("[hidden]") && JSON.stringify(readForm(form)) !== form._snapshot; }

  function clearErrors(form) {
    $$("[aria-invalid]", form).forEach(function (n) { n.removeAttribute("aria-invalid"); });
    $$(".field-error", form).forEach(function (n) { n.textContent = ""; n.hidden = true; });
    var top = $("[data-form-error]", form);
    if (top) { clear(top); top.hidden = true; }
  }

  function formError(form, message) {
    var top = $("[data-form-error]", form);
    clear(top);
    top.appendChild(el("p", { text: message }));
    top.hidden = false;
    top.scrollIntoView({ block: "nearest" });
    resize();
  }

  // Shows the server's message on the field it names; elsewhere (or for an invisible field) above the
  // form. Returns the field's wrapper when there was one.
  function showError(form, err) {
    clearErrors(form);
    var field = err.field ? form.querySelector('[data-field="' + CSS.escape(err.field) + '"]') : null;
    if (!field || field.closest("[hidden]")) {
      formError(form, messageOf(err));
      return null;
    }
    var message = field.querySelector(".field-error");
    message.textContent = messageOf(err);
    message.hidden = false;
    var input = field.querySelector("input:not([type=radio]):not([type=checkbox]), select, textarea") || field.querySelector("input");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus({ preventScroll: true });
    }
    field.scrollIntoView({ block: "nearest" });
    resize();
    return field;
  }

  function setBusy(form, busy, text) {
    $$("button", form).forEach(function (b) { if (busy) { b._wasDisabled = b.disabled; b.disabled = true; } else { b.disabled = !!b._wasDisabled; } });
    var status = $(".form-status", form);
    if (status) status.textContent = text || "";
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // Runs `leave` now, or after the admin confirms dropping the changes of a dirty form.
  function guardLeave(leave) {
    var dirty = $$("form.form").filter(isDirty)[0];
    if (!dirty) { leave(); return; }
    var box = $("[data-discard]", dirty);
    box.hidden = false;
    box._leave = leave;
    $("[data-action=keep]", box).focus();
    box.scrollIntoView({ block: "nearest" });
    resize();
  }

  window.addEventListener("beforeunload", function (e) {
    if ($$("form.form").some(isDirty)) {
      e.preventDefault();
      e.returnValue = "";
    }
  });

  // Reads a file chosen in the browser as text.
  function readText(file) {
    if (file.text) return file.text();
    return new Promise(function (resolve, reject) {
      var r = new FileReader();
      r.onload = function () { resolve(r.result); };
      r.onerror = function () { reject(r.error); };
      r.readAsText(file);
    });
  }

  // A certificate file: PEM text as is; binary DER (.cer/.der) becomes PEM.
  function readCertificate(file) {
    return file.arrayBuffer().then(function (buf) {
      var bytes = new Uint8Array(buf);
      var text = new TextDecoder("utf-8").decode(bytes);
      if (text.indexOf("-----BEGIN") >= 0) return text.trim();
      var bin = "";
      for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
      var b64 = btoa(bin).replace(/(.{64})/g, "$1\n").trim();
      return "-----BEGIN CERTIFICATE-----\n" + b64 + "\n-----END CERTIFICATE-----";
    });
  }

  // -----------------------------------------------------------------------------------------------
  // Tabs

  var tabs = $$('[role="tab"]', app);
  var loaders = {};
  var loaded = {};

  function tabId(tab) { return tab.id.replace(/^tab-/, ""); }

  function selectTab(id, options) {
    options = options || {};
    var target = document.getElementById("tab-" + id);
    if (!target) return;
    var current = tabs.filter(function (t) { return t.getAttribute("aria-selected") === "true"; })[0];
    var go = function () {
      tabs.forEach(function (t) {
        var on = t === target;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
      });
      if (options.focus) target.focus();
      if (loaders[id] && (!loaded[id] || options.reload !== false)) {
        loaded[id] = true;
        loaders[id]();
      }
      if (options.then) options.then();
      resize();
    };
    if (current === target) { go(); return; }
    guardLeave(go);
  }

  tabs.forEach(function (tab, i) {
    tab.addEventListener("click", function () { selectTab(tabId(tab)); });
    tab.addEventListener("keydown", function (e) {
      var next = null;
      if (e.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
      else if (e.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
      else if (e.key === "Home") next = tabs[0];
      else if (e.key === "End") next = tabs[tabs.length - 1];
      if (next) { e.preventDefault(); selectTab(tabId(next), { focus: true }); }
    });
  });

  // -----------------------------------------------------------------------------------------------
  // Shared data

  var idps = [];
  var idpsLoaded = null;

  function loadIdps() {
    idpsLoaded = api("GET", "/api/v1/idps").then(function (data) {
      idps = (data && data.idps) || [];
      fillIdpFilter();
      return idps;
    });
    return idpsLoaded;
  }

  function idpName(id) {
    if (!id) return "—";
    var found = idps.filter(function (i) { return i.id === id; })[0];
    return found ? found.name : "Deleted identity provider";
  }

  // Opens the IdP's test sign-in in a new window (never in Jira's window).
  function openTest(idp, statusNode) {
    var w = window.open(idp.test_url, "_blank");
    if (w) {
      try { w.opener = null; } catch (e) { /* cross-origin already */ }
      if (statusNode) {
        clear(statusNode);
        statusNode.appendChild(el("p", { text: "The test sign-in opened in a new window. Its result (and every attribute your IdP sent) shows there, and in Login activity." }));
        statusNode.className = "idp-status section-message";
        statusNode.hidden = false;
      }
    } else if (statusNode) {
      clear(statusNode);
      statusNode.className = "idp-status section-message section-message-warning";
      statusNode.appendChild(el("p", {}, ["Your browser blocked the new window. ",
        el("a", { href: idp.test_url, target: "_blank", rel: "noopener", text: "Open the test sign-in" }), "."]));
      statusNode.hidden = false;
    }
    resize();
  }

  // Another of this app's pages (a descriptor module): only Jira can open it, with a new signed URL.
  function goToModule(key) {
    guardLeave(function () {
      if (AP && AP.navigator && typeof AP.navigator.go === "function") AP.navigator.go("addonmodule", { moduleKey: key });
    });
  }

  // -----------------------------------------------------------------------------------------------
  // Getting started

  function setStep(name, state, label, detail) {
    var step = $('[data-step="' + name + '"]', app);
    step.setAttribute("data-state", state);
    var kind = { done: "success", problem: "removed", warning: "moved", todo: "", na: "", loading: "" }[state];
    var badge = $("[data-status]", step);
    badge.className = "lozenge" + (kind ? " lozenge-" + kind : "");
    badge.textContent = label;
    var d = $("[data-detail]", step);
    clear(d);
    if (detail) (Array.isArray(detail) ? detail : [detail]).forEach(function (c) { d.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
  }

  function latestEvent(outcome) {
    return api("GET", "/api/v1/login-events?limit=1&outcome=" + outcome).then(function (d) { return (d.events || [])[0] || null; });
  }

  function loadChecklist() {
    ["register", "idp", "test", "token", "links"].forEach(function (s) { setStep(s, "loading", "Checking…"); });
    var testButton = $('[data-action="start-test"]', app);
    Promise.all([
      loadIdps(),
      latestEvent("test_success"),
      latestEvent("test_failure"),
      latestEvent("success"),
      api("GET", "/api/v1/api-token").then(function (d) { return { status: 200, data: d }; }, function (e) {
        if (e instanceof ApiError && e.status === 404) return { status: 404 };
        return { status: e.status || 0, error: e };
      }),
    ]).then(function (r) {
      var list = r[0], testOk = r[1], testFail = r[2], signedIn = r[3], token = r[4];
      var enabled = list.filter(function (i) { return i.enabled; });

      if (signedIn || testOk) setStep("register", "done", "Done", "Your IdP accepted this service: a sign-in has succeeded.");
      else setStep("register", "todo", "To do", "Copy the values from the Service provider tab into your IdP.");

      if (!list.length) setStep("idp", "todo", "To do", "No identity provider yet.");
      else if (!enabled.length) setStep("idp", "warning", "Turned off", plural(list.length, "identity provider is", "identity providers are") + " added, but none is turned on for sign-in.");
      else setStep("idp", "done", "Done", plural(enabled.length, "identity provider", "identity providers") + " on: " + enabled.map(function (i) { return i.name; }).join(", ") + ".");
      $('[data-step="idp"] [data-action="start-add-idp"]', app).textContent = list.length ? "Add another identity provider" : "Add identity provider";

      var lastFailureNewer = testFail && (!testOk || testFail.seq > testOk.seq);
      if (lastFailureNewer) {
        setStep("test", "problem", "Failed", ["The last test (" + formatDate(testFail.occurred_at) + ", " + idpName(testFail.idp_id) + ") failed: " + testFail.message + " ",
          el("button", { type: "button", class: "button-link", text: "See details in Login activity", onclick: function () { showActivity("test_failure"); } })]);
      } else if (testOk) {
        setStep("test", "done", "Done", "Last successful test: " + formatDate(testOk.occurred_at) + " with " + idpName(testOk.idp_id) + (testOk.email ? " (" + testOk.email + ")." : "."));
      } else {
        setStep("test", "todo", "To do", list.length ? "Sign in once through the test to check the IdP and the attributes it sends." : "Add an identity provider first.");
      }
      var testable = enabled[0] || list[0];
      testButton.disabled = !testable;
      testButton.textContent = list.length > 1 ? "Test sign-in…" : "Test sign-in";

      var tokenButton = $('[data-module="api-token"]', app);
      var tokenOk = false;
      if (token.status === 404) {
        setStep("token", "na", "Not configured", "No service account is connected yet.");
        tokenButton.textContent = "Connect the service account";
      } else if (token.status === 200) {
        var d = token.data || {};
        var who = (d.display_name ? d.display_name + " (" + d.email + ")" : d.email) || "connected";
        if (d.status === "failing") {
          setStep("token", "problem", "Refused", "Jira refuses the service account " + who + (d.failing_since ? " since " + formatDate(d.failing_since) : "") + ": " + (d.status_reason || "unknown reason") + ". Customers cannot use the helpdesk until it is fixed.");
          tokenButton.textContent = "Fix the service account";
        } else {
          tokenOk = true;
          setStep("token", "done", "Done", "Service account: " + who + (d.last_checked_at ? ", checked " + formatDate(d.last_checked_at) : "") + ".");
          tokenButton.textContent = "Manage the service account";
        }
      } else {
        setStep("token", "problem", "Unknown", "Could not check the service account: " + messageOf(token.error));
      }

      var missing = [];
      if (!enabled.length) missing.push("an identity provider that is on");
      if (!testOk || lastFailureNewer) missing.push("a passed sign-in test");
      if (!tokenOk) missing.push("the service account");
      if (!tokenOk) {
        setStep("links", "todo", "Not yet", "Waiting for " + missing.join(", ") + ".");
        resize();
        return;
      }
      setStep("links", "loading", "Checking…");
      return api("GET", "/api/v1/portals").then(function (portals) {
        var list = Array.isArray(portals) ? portals : (portals && portals.portals) || [];
        var linked = list.filter(function (p) { return p.substitute_link; });
        var names = linked.slice(0, 3).map(function (p) { return p.project_name || p.project_key; }).join(", ") + (linked.length > 3 ? "…" : "");
        if (!linked.length) {
          setStep("links", "warning", "No portals", "The service account sees no service desk with a customer portal.");
        } else if (missing.length) {
          setStep("links", "todo", "Not yet", plural(linked.length, "substitute link", "substitute links") + " (" + names + "), to share once you have " + missing.join(", ") + ".");
        } else {
          setStep("links", "done", "Ready", plural(linked.length, "substitute link is", "substitute links are") + " ready to share: " + names + ".");
        }
        resize();
      }, function (err) {
        setStep("links", "problem", "Unknown", "The service desks could not be listed: " + messageOf(err));
        resize();
      });
    }).catch(function (err) {
      showAppError("The setup status could not be loaded: " + messageOf(err));
    });
  }
  loaders.start = loadChecklist;

  app.addEventListener("click", function (e) {
    var t = e.target.closest("[data-action], [data-goto], [data-copy], [data-module]");
    if (!t || !app.contains(t)) return;
    if (t.hasAttribute("data-copy")) { copyFrom(t); return; }
    if (t.hasAttribute("data-module")) { goToModule(t.getAttribute("data-module")); return; }
    if (t.hasAttribute("data-goto")) { selectTab(t.getAttribute("data-goto")); return; }
    var action = t.getAttribute("data-action");
    var handler = actions[action];
    if (handler) { e.preventDefault(); handler(t, e); }
  });

  var actions = {
    "reload-checklist": loadChecklist,
    "start-add-idp": function () { selectTab("idps", { then: function () { showAddForm(); } }); },
    "start-test": function () {
      var enabled = idps.filter(function (i) { return i.enabled; });
      if (idps.length > 1 || !idps.length) { selectTab("idps"); return; }
      openTest(enabled[0] || idps[0], null);
    },
  };

  // -----------------------------------------------------------------------------------------------
  // Identity providers: list

  var listView = $("#idp-list-view");
  var addView = $("#idp-add-view");
  var editView = $("#idp-edit-view");
  var addForm = $("#add-idp-form");
  var editForm = $("#edit-idp-form");

  function showView(view) {
    [listView, addView, editView].forEach(function (v) { v.hidden = v !== view; });
    $$("[data-discard]").forEach(function (b) { b.hidden = true; });
    resize();
  }

  function notice(kind, children) {
    var box = $("#idp-notice");
    clear(box);
    if (!children) { box.hidden = true; return; }
    box.className = "section-message" + (kind ? " section-message-" + kind : "");
    children.forEach(function (c) { box.appendChild(typeof c === "string" ? el("p", { text: c }) : c); });
    box.hidden = false;
    resize();
  }

  function sourceLabel(idp) {
    if (idp.source === "metadata_url") return "Metadata URL";
    if (idp.source === "metadata_file") return "Metadata file";
    return "Entered manually";
  }

  function certificateSummary(certs) {
    if (!certs.length) return lozenge("No certificate", "removed");
    var latest = certs.reduce(function (a, b) { return new Date(a.not_after) > new Date(b.not_after) ? a : b; });
    return expiryBadge(latest.not_after);
  }

  function renderIdpCard(idp) {
    var status = el("div", { class: "idp-status", role: "status" });
    var confirmSlot = el("div", {});
    var facts = el("dl", { class: "facts" }, [
      el("dt", { text: "Entity ID" }), el("dd", {}, [el("code", { text: idp.entity_id })]),
      el("dt", { text: "Single sign-on URL" }), el("dd", {}, [el("code", { text: idp.sso_url }), " ", el("span", { class: "muted", text: "(" + (idp.sso_binding === "post" ? "HTTP-POST" : "HTTP-Redirect") + ")" })]),
      el("dt", { text: "Signing certificates" }), el("dd", {}, certificateLines(idp.certificates)),
      el("dt", { text: "Last successful sign-in" }), el("dd", { text: idp.last_login_at ? formatDate(idp.last_login_at) : "Never" }),
      el("dt", { text: "Configured from" }), el("dd", {}, configuredFrom(idp)),
    ]);
    var warnings = idp.warnings && idp.warnings.length ? el("div", { class: "section-message section-message-warning" }, [
      el("p", {}, [el("strong", { text: idp.warnings.length === 1 ? "Warning" : plural(idp.warnings.length, "warning", "warnings") })]),
      el("ul", {}, idp.warnings.map(function (w) { return el("li", { text: w.message }); })),
    ]) : null;
    var refreshProblem = idp.last_refresh && idp.last_refresh.status && idp.last_refresh.status !== "ok"
      ? el("div", { class: "section-message section-message-error" }, [el("p", { text: "The last metadata refresh (" + formatDate(idp.last_refresh.at) + ") failed: " + (idp.last_refresh.error || idp.last_refresh.status) + " The previous configuration is still used." })])
      : null;

    var buttons = [
      el("button", { type: "button", class: "button button-default", text: "Test configuration", "data-idp-action": "test" }),
      el("button", { type: "button", class: "button button-default", text: "Edit", "data-idp-action": "edit" }),
      el("button", { type: "button", class: "button button-default", text: idp.enabled ? "Turn off" : "Turn on", "data-idp-action": "toggle" }),
      idp.source === "metadata_url" ? el("button", { type: "button", class: "button button-default", text: "Refresh metadata", "data-idp-action": "refresh" }) : null,
      el("button", { type: "button", class: "button button-subtle", text: "Delete", "data-idp-action": "delete" }),
    ];
    var card = el("li", { class: "idp-card", "data-idp-id": idp.id, "data-enabled": String(idp.enabled) }, [
      el("div", { class: "idp-head" }, [
        el("h3", { class: "idp-name", text: idp.name }),
        idp.enabled ? lozenge("On", "success") : lozenge("Off"),
        certificateSummary(idp.certificates),
        idp.warnings && idp.warnings.length ? lozenge(plural(idp.warnings.length, "warning", "warnings"), "moved") : null,
      ]),
      facts,
      warnings,
      refreshProblem,
      el("div", { class: "idp-actions" }, buttons),
      confirmSlot,
      status,
    ]);
    card._idp = idp;
    card._status = status;
    card._confirm = confirmSlot;
    return card;
  }

  function certificateLines(certs) {
    return certs.map(function (c) {
      return el("div", {}, [expiryBadge(c.not_after), " ", el("span", { class: "muted", text: c.subject + " · " + c.key_bits + "-bit · SHA-256 " + c.fingerprint_sha256.slice(0, 23) + "…" })]);
    });
  }

  function configuredFrom(idp) {
    var parts = [sourceLabel(idp)];
    if (idp.metadata_url) parts.push(" ", el("code", { text: idp.metadata_url }));
    if (idp.source === "metadata_url" && idp.last_refresh && idp.last_refresh.at) parts.push(el("span", { class: "muted", text: " · checked " + formatDate(idp.last_refresh.at) }));
    return parts;
  }

  function renderIdpList() {
    var box = $("#idp-list");
    clear(box);
    box.setAttribute("aria-busy", "false");
    if (!idps.length) {
      box.appendChild(el("div", { class: "empty-state" }, [
        el("h3", { text: "No identity provider yet" }),
        el("p", { class: "muted", text: "Add your SAML identity provider (WSO2 Identity Server, Okta, Entra ID, ADFS, Keycloak…) to let customers sign in with it." }),
        el("button", { type: "button", class: "button button-primary", text: "Add identity provider", "data-action": "add-idp" }),
      ]));
    } else {
      box.appendChild(el("ul", { class: "idp-cards idp-list" }, idps.map(renderIdpCard)));
    }
    resize();
  }

  function reloadIdpList() {
    return loadIdps().then(renderIdpList, function (err) {
      var box = $("#idp-list");
      clear(box);
      box.appendChild(el("div", { class: "section-message section-message-error" }, [el("p", { text: "The identity providers could not be loaded: " + messageOf(err) })]));
      resize();
    });
  }

  loaders.idps = function () {
    if (!addView.hidden || !editView.hidden) return;
    reloadIdpList();
  };

  function cardOf(node) { return node.closest(".idp-card"); }

  $("#idp-list").addEventListener("click", function (e) {
    var b = e.target.closest("[data-idp-action]");
    if (!b) return;
    var card = cardOf(b);
    var idp = card._idp;
    var act = b.getAttribute("data-idp-action");
    if (act === "test") openTest(idp, card._status);
    else if (act === "edit") showEditForm(idp);
    else if (act === "toggle") toggleIdp(card, b);
    else if (act === "refresh") refreshIdp(card, b);
    else if (act === "delete") confirmDelete(card);
  });

  function cardStatus(card, kind, text) {
    var s = card._status;
    clear(s);
    s.className = "idp-status section-message" + (kind ? " section-message-" + kind : "");
    (Array.isArray(text) ? text : [text]).forEach(function (t) { s.appendChild(el("p", { text: t })); });
    resize();
  }

  function replaceIdp(updated) {
    idps = idps.map(function (i) { return i.id === updated.id ? updated : i; });
  }

  function toggleIdp(card, button) {
    var idp = card._idp;
    button.disabled = true;
    api("PUT", "/api/v1/idps/" + encodeURIComponent(idp.id), { enabled: !idp.enabled }).then(function (updated) {
      replaceIdp(updated);
      var fresh = renderIdpCard(updated);
      card.replaceWith(fresh);
      cardStatus(fresh, "success", updated.enabled ? updated.name + " is on: customers can sign in through it." : updated.name + " is off: customers cannot sign in through it until you turn it on again.");
      $('[data-idp-action="toggle"]', fresh).focus();
    }, function (err) {
      button.disabled = false;
      cardStatus(card, "error", messageOf(err));
    });
  }

  function refreshIdp(card, button) {
    var idp = card._idp;
    button.disabled = true;
    cardStatus(card, "", "Downloading the metadata…");
    api("POST", "/api/v1/idps/" + encodeURIComponent(idp.id) + "/refresh").then(function (r) {
      replaceIdp(r.idp);
      var fresh = renderIdpCard(r.idp);
      card.replaceWith(fresh);
      var c = r.changes || {};
      var lines = [];
      (c.certificates_added || []).forEach(function (x) { lines.push("New signing certificate trusted: " + x.subject + " (valid until " + formatDay(x.not_after) + ")."); });
      (c.certificates_removed || []).forEach(function (x) { lines.push("Signing certificate no longer published, no longer trusted: " + x.subject + "."); });
      if (c.sso_url_changed) lines.push("The single sign-on URL changed.");
      if (c.slo_url_changed) lines.push("The single logout URL changed.");
      cardStatus(fresh, "success", lines.length ? ["Metadata refreshed."].concat(lines) : "Metadata refreshed: nothing changed.");
    }, function (err) {
      button.disabled = false;
      cardStatus(card, "error", "The metadata could not be refreshed: " + messageOf(err) + " The current configuration is kept.");
    });
  }

  // Inline confirmation, focus on the safe choice; Escape cancels.
  function confirmDelete(card) {
    var idp = card._idp;
    var slot = card._confirm;
    clear(slot);
    var cancel = el("button", { type: "button", class: "button button-subtle", text: "Cancel", "data-confirm": "cancel" });
    var del = el("button", { type: "button", class: "button button-danger", text: "Delete", "data-confirm": "delete" });
    var box = el("div", { class: "inline-confirm danger", role: "group", "aria-label": "Confirm deletion" }, [
      el("p", {}, [el("strong", { text: "Delete " + idp.name + "?" }), " Customers can no longer sign in through it, and its settings are lost. This cannot be undone."]),
      del, cancel,
    ]);
    var close = function () { clear(slot); $('[data-idp-action="delete"]', card).focus(); resize(); };
    cancel.onclick = close;
    box.onkeydown = function (e) { if (e.key === "Escape") close(); };
    del.onclick = function () {
      del.disabled = true;
      cancel.disabled = true;
      api("DELETE", "/api/v1/idps/" + encodeURIComponent(idp.id)).then(function () {
        idps = idps.filter(function (i) { return i.id !== idp.id; });
        renderIdpList();
        notice("success", [idp.name + " was deleted."]);
        fillIdpFilter();
      }, function (err) {
        del.disabled = false;
        cancel.disabled = false;
        cardStatus(card, "error", "Not deleted: " + messageOf(err));
      });
    };
    slot.appendChild(box);
    cancel.focus();
    resize();
  }

  // -----------------------------------------------------------------------------------------------
  // Identity providers: add

  actions["add-idp"] = function () { showAddForm(); };

  function showAddForm() {
    addForm.reset();
    clearErrors(addForm);
    resetCandidates();
    syncAddForm();
    notice(null, null);
    showView(addView);
    snapshot(addForm);
    $("#add-name").focus();
  }

  function syncAddForm() {
    var method = (addForm.querySelector("input[name=method]:checked") || {}).value;
    var source = (addForm.querySelector("input[name=source]:checked") || {}).value;
    $('[data-method="metadata"]', addForm).hidden = method !== "metadata";
    $('[data-method="manual"]', addForm).hidden = method !== "manual";
    $('[data-source="url"]', addForm).hidden = source !== "url";
    $('[data-source="file"]', addForm).hidden = source !== "file";
    resize();
  }

  function resetCandidates() {
    var box = $('[data-field="entity"]', addForm);
    clear($("[data-candidates]", box));
    box.hidden = true;
  }

  addForm.addEventListener("change", function (e) {
    if (e.target.name === "method" || e.target.name === "source") { syncAddForm(); resetCandidates(); }
    if (e.target.name === "metadata_url" || e.target.name === "metadata_file") resetCandidates();
  });

  function showCandidates(err) {
    var box = $('[data-field="entity"]', addForm);
    var list = $("[data-candidates]", box);
    clear(list);
    err.candidates.forEach(function (c, i) {
      list.appendChild(el("label", { class: "radio" }, [el("input", { type: "radio", name: "entity", value: c, checked: i === 0 }), el("code", { text: c })]));
    });
    box.hidden = false;
    var msg = $(".field-error", box);
    msg.textContent = err.message;
    msg.hidden = false;
    var first = $("input", list);
    if (first) first.focus();
    box.scrollIntoView({ block: "nearest" });
    resize();
  }

  function buildCreateBody() {
    var v = readForm(addForm);
    var body = { name: v.name, enabled: !!v.enabled };
    if (v.method === "manual") {
      body.entity_id = v.entity_id;
      body.sso_url = v.sso_url;
      if (v.slo_url && v.slo_url.trim()) body.slo_url = v.slo_url;
      body.certificate_pem = v.certificate_pem;
      return Promise.resolve(body);
    }
    if (v.entity) body.entity = v.entity;
    if (v.source === "url") {
      body.metadata_url = v.metadata_url;
      return Promise.resolve(body);
    }
    var file = $("#add-metadata-file").files[0];
    if (!file) return Promise.reject(new ApiError(422, { error: { field: "metadata_xml", message: "Choose the metadata file your IdP gave you (an .xml file)." } }));
    if (file.size > 3 * 1024 * 1024) return Promise.reject(new ApiError(413, { error: { field: "metadata_xml", message: "This file is " + Math.round(file.size / 1048576) + " MiB; IdP metadata is far smaller. Is it the right file?" } }));
    return readText(file).then(function (xml) { body.metadata_xml = xml; return body; });
  }

  addForm.addEventListener("submit", function (e) {
    e.preventDefault();
    clearErrors(addForm);
    setBusy(addForm, true, "Adding…");
    buildCreateBody().then(function (body) {
      return api("POST", "/api/v1/idps", body);
    }).then(function (idp) {
      setBusy(addForm, false);
      snapshot(addForm);
      idps = idps.concat([idp]);
      fillIdpFilter();
      showView(listView);
      renderIdpList();
      notice("success", [el("p", {}, [el("strong", { text: idp.name + " was added." }), " Next: test the sign-in."]),
        el("div", { class: "button-group" }, [el("button", { type: "button", class: "button button-primary", text: "Test configuration", onclick: function () { openTest(idp, $('[data-idp-id="' + idp.id + '"] .idp-status')); } })])]);
    }).catch(function (err) {
      setBusy(addForm, false);
      if (err instanceof ApiError && err.code === "entity_selection_required" && err.candidates) { showCandidates(err); return; }
      if (err instanceof ApiError && err.field === "entity" && err.candidates) { showCandidates(err); return; }
      showError(addForm, err);
    });
  });

  // -----------------------------------------------------------------------------------------------
  // Identity providers: edit

  var SETTINGS = {
    email_attribute: "text", given_name_attribute: "text", family_name_attribute: "text", display_name_attribute: "text",
    name_id_format: "text", email_domains: "list", clock_skew_secs: "int", session_hours: "int",
    allow_sha1: "bool", sign_authn_requests: "bool", allow_idp_initiated: "bool", force_authn: "bool", create_customers: "bool",
  };
  var editing = null;

  function field(form, name) { return form.querySelector('[name="' + name + '"]'); }

  function showEditForm(idp) {
    editing = idp;
    editForm.reset();
    clearErrors(editForm);
    $('[data-slot="name"]', editForm).textContent = idp.name;
    field(editForm, "name").value = idp.name;
    field(editForm, "enabled").checked = idp.enabled;
    var manual = idp.source === "manual";
    $('[data-source-kind="manual"]', editForm).hidden = !manual;
    $('[data-source-kind="metadata"]', editForm).hidden = manual;
    field(editForm, "metadata_url").value = idp.metadata_url || "";
    var fromUrl = idp.source === "metadata_url";
    $('[data-slot="metadata-url-label"]', editForm).textContent = fromUrl ? "Metadata URL" : "Switch to a metadata URL (optional)";
    $('[data-slot="metadata-url-help"]', editForm).textContent = fromUrl
      ? "Change it to download the metadata from a new address (the entity ID must stay the same)."
      : "Downloaded now and refreshed every 12 hours, so IdP certificate changes are picked up on their own. The entity ID must stay the same.";
    field(editForm, "entity_id").value = idp.entity_id;
    field(editForm, "sso_url").value = idp.sso_url;
    field(editForm, "slo_url").value = idp.slo_url || "";
    field(editForm, "certificate_pem").value = "";
    var s = idp.settings || {};
    Object.keys(SETTINGS).forEach(function (k) {
      var input = field(editForm, "settings." + k);
      if (!input) return;
      var kind = SETTINGS[k];
      if (kind === "bool") input.checked = !!s[k];
      else if (kind === "list") input.value = (s[k] || []).join(", ");
      else input.value = s[k] === null || s[k] === undefined ? "" : String(s[k]);
    });
    syncSha1();
    var conn = $('[data-slot="connection"]', editForm);
    clear(conn);
    [["Configured from", configuredFrom(idp)], ["Entity ID", [el("code", { text: idp.entity_id })]],
      ["Single sign-on URL", [el("code", { text: idp.sso_url })]],
      ["Single logout URL", idp.slo_url ? [el("code", { text: idp.slo_url })] : ["None"]],
      ["Signing certificates", certificateLines(idp.certificates)]].forEach(function (row) {
      conn.appendChild(el("dt", { text: row[0] }));
      conn.appendChild(el("dd", {}, row[1]));
    });
    notice(null, null);
    showView(editView);
    snapshot(editForm);
    field(editForm, "name").focus();
  }

  function syncSha1() { $("[data-sha1-warning]", editForm).hidden = !field(editForm, "settings.allow_sha1").checked; resize(); }
  field(editForm, "settings.allow_sha1").addEventListener("change", syncSha1);

  function settingValue(kind, input) {
    if (kind === "bool") return input.checked;
    var raw = input.value.trim();
    if (kind === "list") return raw ? raw.split(/[\s,;]+/).filter(Boolean) : [];
    if (kind === "int") return /^\d+$/.test(raw) ? Number(raw) : raw; // the server names what is wrong
    return raw === "" ? null : raw;
  }

  function buildUpdateBody() {
    var idp = editing;
    var body = {};
    var name = field(editForm, "name").value;
    if (name !== idp.name) body.name = name;
    var enabled = field(editForm, "enabled").checked;
    if (enabled !== idp.enabled) body.enabled = enabled;
    var settings = {};
    Object.keys(SETTINGS).forEach(function (k) {
      var input = field(editForm, "settings." + k);
      var v = settingValue(SETTINGS[k], input);
      if (JSON.stringify(v) !== JSON.stringify(idp.settings[k] === undefined ? null : idp.settings[k])) settings[k] = v;
    });
    if (Object.keys(settings).length) body.settings = settings;
    if (idp.source === "manual") {
      var entity = field(editForm, "entity_id").value.trim();
      if (entity !== idp.entity_id) body.entity_id = entity;
      var sso = field(editForm, "sso_url").value.trim();
      if (sso !== idp.sso_url) body.sso_url = sso;
      var slo = field(editForm, "slo_url").value.trim();
      if (slo !== (idp.slo_url || "")) body.slo_url = slo === "" ? null : slo;
      var pem = field(editForm, "certificate_pem").value.trim();
      if (pem) body.certificate_pem = pem;
      return Promise.resolve(body);
    }
    var url = field(editForm, "metadata_url").value.trim();
    if (url && url !== (idp.metadata_url || "")) body.metadata_url = url;
    var file = $("#edit-metadata-file").files[0];
    if (!file) return Promise.resolve(body);
    return readText(file).then(function (xml) { body.metadata_xml = xml; return body; });
  }

  editForm.addEventListener("submit", function (e) {
    e.preventDefault();
    clearErrors(editForm);
    setBusy(editForm, true, "Saving…");
    buildUpdateBody().then(function (body) {
      if (!Object.keys(body).length) return null;
      return api("PUT", "/api/v1/idps/" + encodeURIComponent(editing.id), body);
    }).then(function (updated) {
      setBusy(editForm, false);
      if (!updated) { $(".form-status", editForm).textContent = "Nothing to save: no changes."; return; }
      snapshot(editForm);
      replaceIdp(updated);
      showView(listView);
      renderIdpList();
      notice("success", ["Changes to " + updated.name + " were saved."]);
    }).catch(function (err) {
      setBusy(editForm, false);
      showError(editForm, err);
    });
  });

  // Cancel / back, discard, keep editing (both forms).
  [addForm, editForm].forEach(function (form) {
    form.addEventListener("click", function (e) {
      var b = e.target.closest("[data-action]");
      if (!b) return;
      var act = b.getAttribute("data-action");
      if (act === "cancel") {
        e.stopPropagation();
        guardLeave(function () { form._snapshot = null; showView(listView); renderIdpList(); });
      } else if (act === "discard") {
        e.stopPropagation();
        var box = $("[data-discard]", form);
        var leave = box._leave;
        box.hidden = true;
        box._leave = null;
        // The changes are gone for good: the form is closed, not left showing unsaved values.
        form._snapshot = null;
        clearErrors(form);
        showView(listView);
        renderIdpList();
        if (leave) leave();
      } else if (act === "keep") {
        e.stopPropagation();
        $("[data-discard]", form).hidden = true;
        resize();
      }
    });
    form.addEventListener("input", function (e) {
      var f = e.target.closest(".field");
      if (f && e.target.getAttribute("aria-invalid")) {
        e.target.removeAttribute("aria-invalid");
      }
    });
  });

  // Certificate files for the manual fields.
  $$("[data-load-certificate]").forEach(function (input) {
    input.addEventListener("change", function () {
      var file = input.files[0];
      if (!file) return;
      readCertificate(file).then(function (pem) {
        var ta = document.getElementById(input.getAttribute("data-load-certificate"));
        ta.value = pem;
        ta.dispatchEvent(new Event("input", { bubbles: true }));
        input.value = "";
      });
    });
  });

  // -----------------------------------------------------------------------------------------------
  // Service provider

  var sp = null;

  function renderSp(info) {
    sp = info;
    $$("[data-sp]", app).forEach(function (n) {
      var v = info[n.getAttribute("data-sp")];
      if (typeof v === "string") n.textContent = v;
    });
    $("#sp-values").setAttribute("aria-busy", "false");
    $("#sp-certificate").value = info.certificate_pem;
    $('[data-slot="cert-fingerprint"]').textContent = info.certificate_fingerprint_sha256;
    var exp = $('[data-slot="cert-expiry"]');
    clear(exp);
    exp.appendChild(expiryBadge(info.certificate_not_after));
    var hasNext = !!info.next_certificate_pem;
    $('[data-slot="rollover-none"]').hidden = hasNext;
    $('[data-slot="rollover-next"]').hidden = !hasNext;
    $("[data-promote-confirm]").hidden = true;
    if (hasNext) {
      $("#sp-next-certificate").value = info.next_certificate_pem;
      $('[data-slot="next-fingerprint"]').textContent = info.next_certificate_fingerprint_sha256;
      var nexp = $('[data-slot="next-expiry"]');
      clear(nexp);
      nexp.appendChild(expiryBadge(info.next_certificate_not_after));
    }
    resize();
  }

  function loadSp() {
    return api("GET", "/api/v1/sp").then(renderSp, function (err) {
      showAppError("The service provider details could not be loaded: " + messageOf(err));
    });
  }
  loaders.sp = loadSp;

  function statusIn(button) { return button.parentElement.querySelector(".form-status"); }

  actions["download-metadata"] = function (b) {
    var status = $('[data-slot="metadata-status"]');
    status.textContent = "";
    api("GET", "/api/v1/sp/metadata", undefined, { text: true }).then(function (xml) {
      download("jsm-sso-sp-metadata.xml", xml, "application/samlmetadata+xml");
      status.textContent = "Downloaded jsm-sso-sp-metadata.xml";
    }, function (err) { status.textContent = "Not downloaded: " + messageOf(err); });
  };

  actions["download-cert"] = function (b) {
    if (!sp) return;
    var next = b.getAttribute("data-which") === "next";
    var pem = next ? sp.next_certificate_pem : sp.certificate_pem;
    var ext = b.getAttribute("data-ext");
    download("jsm-sso-sp" + (next ? "-next" : "") + "-certificate." + ext, pem.trim() + "\n", ext === "crt" ? "application/x-x509-ca-cert" : "application/x-pem-file");
  };

  actions["create-next-cert"] = function (b) {
    var status = statusIn(b);
    b.disabled = true;
    status.textContent = "Creating…";
    api("POST", "/api/v1/sp/certificate/next").then(function (info) {
      b.disabled = false;
      status.textContent = "";
      renderSp(info);
      var copy = $('[data-slot="rollover-next"] .copy-status');
      setCopyStatus(copy, "Created. Give it to every IdP, then promote it.");
    }, function (err) { b.disabled = false; status.textContent = messageOf(err); });
  };

  actions["promote-cert"] = function () {
    var box = $("[data-promote-confirm]");
    box.hidden = false;
    $('[data-action="promote-cancel"]', box).focus();
    resize();
  };
  actions["promote-cancel"] = function () {
    $("[data-promote-confirm]").hidden = true;
    $('[data-action="promote-cert"]').focus();
    resize();
  };
  actions["promote-confirm"] = function (b) {
    b.disabled = true;
    api("POST", "/api/v1/sp/certificate/promote").then(function (info) {
      b.disabled = false;
      renderSp(info);
      var status = statusIn($('[data-action="create-next-cert"]'));
      status.textContent = "The next certificate is now the current one.";
    }, function (err) {
      b.disabled = false;
      var status = statusIn($('[data-action="promote-cert"]'));
      status.textContent = messageOf(err);
    });
  };

  // -----------------------------------------------------------------------------------------------
  // Login activity

  var activity = { events: [], next: null };
  var OUTCOMES = {
    success: ["Signed in", "success"], failure: ["Failed", "removed"], test_success: ["Test passed", "inprogress"],
    test_failure: ["Test failed", "removed"], logout: ["Signed out", ""], warning: ["Warning", "moved"],
  };

  function fillIdpFilter() {
    var select = $("#activity-idp");
    var current = select.value;
    while (select.options.length > 1) select.remove(1);
    idps.forEach(function (i) { select.appendChild(el("option", { value: i.id, text: i.name })); });
    select.value = current && idps.some(function (i) { return i.id === current; }) ? current : "";
  }

  function activityQuery(before, limit) {
    var q = ["limit=" + (limit || 50)];
    var idp = $("#activity-idp").value;
    var outcome = $("#activity-outcome").value;
    if (idp) q.push("idp=" + encodeURIComponent(idp));
    if (outcome) q.push("outcome=" + encodeURIComponent(outcome));
    if (before) q.push("before=" + encodeURIComponent(before));
    return "/api/v1/login-events?" + q.join("&");
  }

  function detailsList(details) {
    if (!details || typeof details !== "object") return null;
    var keys = Object.keys(details);
    if (!keys.length) return null;
    var dl = el("dl", {});
    keys.forEach(function (k) {
      var v = details[k];
      dl.appendChild(el("dt", { text: k }));
      dl.appendChild(el("dd", {}, [el("code", { text: typeof v === "string" ? v : JSON.stringify(v) })]));
    });
    return el("details", {}, [el("summary", { text: "Details" }), dl]);
  }

  function eventRow(ev) {
    var o = OUTCOMES[ev.outcome] || [ev.outcome, ""];
    var user = ev.email || ev.name_id || "—";
    return el("tr", { "data-event-id": ev.id }, [
      el("td", { class: "nowrap", text: formatDate(ev.occurred_at) }),
      el("td", {}, [lozenge(o[0], o[1])]),
      el("td", { text: idpName(ev.idp_id) }),
      el("td", {}, [ev.email || ev.name_id ? el("span", { text: user }) : el("span", { class: "muted", text: "—" }),
        ev.email && ev.name_id && ev.name_id !== ev.email ? el("div", { class: "muted", text: "NameID " + ev.name_id }) : null]),
      el("td", {}, [el("div", { text: ev.message }), ev.reason_code ? el("code", { class: "reason-code", text: ev.reason_code }) : null, detailsList(ev.details)]),
    ]);
  }

  function renderActivity() {
    var box = $("#activity-table");
    clear(box);
    box.setAttribute("aria-busy", "false");
    if (!activity.events.length) {
      box.appendChild(el("div", { class: "empty-state" }, [el("h3", { text: "No activity" }),
        el("p", { class: "muted", text: $("#activity-idp").value || $("#activity-outcome").value ? "Nothing matches these filters." : "Sign-ins, tests and failures appear here." })]));
    } else {
      box.appendChild(el("table", { class: "table" }, [
        el("thead", {}, [el("tr", {}, ["Time", "Result", "Identity provider", "Customer", "Reason"].map(function (h) { return el("th", { scope: "col", text: h }); }))]),
        el("tbody", {}, activity.events.map(eventRow)),
      ]));
    }
    $('[data-action="more-activity"]').hidden = !activity.next;
    resize();
  }

  function loadActivity(more) {
    var err = $("[data-activity-error]");
    err.hidden = true;
    var before = more ? activity.next : null;
    var ready = idpsLoaded || loadIdps();
    return ready.catch(function () { return []; }).then(function () {
      return api("GET", activityQuery(before));
    }).then(function (d) {
      activity.events = more ? activity.events.concat(d.events) : d.events;
      activity.next = d.next_before;
      renderActivity();
    }, function (e) {
      clear(err);
      err.appendChild(el("p", { text: "The activity could not be loaded: " + messageOf(e) }));
      err.hidden = false;
      resize();
    });
  }
  loaders.activity = function () { loadActivity(false); };

  function showActivity(outcome) {
    $("#activity-outcome").value = outcome || "";
    selectTab("activity");
  }

  $("#activity-filters").addEventListener("change", function () { loadActivity(false); });
  $("#activity-filters").addEventListener("submit", function (e) { e.preventDefault(); });
  actions["reload-activity"] = function () { loadActivity(false); };
  actions["more-activity"] = function () { loadActivity(true); };

  // A cell that a spreadsheet would read as a formula is prefixed with an apostrophe.
  function csvCell(v) {
    var s = v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v);
    if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  // Every event matching the filters (up to 10,000), fetched page by page, as CSV.
  actions["export-csv"] = function (b) {
    var status = $('[data-slot="activity-status"]');
    var rows = [];
    b.disabled = true;
    status.textContent = "Preparing the export…";
    var page = function (before) {
      return api("GET", activityQuery(before, 200)).then(function (d) {
        rows = rows.concat(d.events);
        if (d.next_before && rows.length < 10000) return page(d.next_before);
        return rows;
      });
    };
    page(null).then(function (events) {
      var header = ["occurred_at", "outcome", "identity_provider", "idp_id", "email", "name_id", "reason_code", "message", "details"];
      var lines = [header.join(",")].concat(events.map(function (ev) {
        return [ev.occurred_at, ev.outcome, ev.idp_id ? idpName(ev.idp_id) : "", ev.idp_id, ev.email, ev.name_id, ev.reason_code, ev.message, ev.details && Object.keys(ev.details).length ? ev.details : ""].map(csvCell).join(",");
      }));
      var stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, "").replace("T", "-");
      download("login-activity-" + stamp + ".csv", "\ufeff" + lines.join("\r\n") + "\r\n", "text/csv;charset=utf-8");
      status.textContent = "Exported " + plural(events.length, "event", "events") + ".";
      b.disabled = false;
    }, function (err) {
      status.textContent = "Not exported: " + messageOf(err);
      b.disabled = false;
    });
  };

  // -----------------------------------------------------------------------------------------------
  // Start

  if (!AP || !AP.context) {
    showAppError("This page only works inside Jira. Open it from Jira: Apps → Manage apps → SAML SSO for customers.");
    return;
  }
  var initial = app.getAttribute("data-initial-tab") || "start";
  loaded[initial] = false;
  selectTab(initial);
  resize();
})();
