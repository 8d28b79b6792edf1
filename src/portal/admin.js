// The helpdesk admin pages (service account, substitute links) inside Jira's iframe. Calls the admin API
// with the Connect context token; everything it shows is set as text, never as HTML.
(function () {
  "use strict";
  var root = document.querySelector("[data-api-base]");
  if (!root) return;
  var apiBase = root.getAttribute("data-api-base");

  function token() {
    return new Promise(function (resolve, reject) {
      if (!window.AP || !window.AP.context) {
        reject(new Error("This page must be opened inside Jira."));
        return;
      }
      window.AP.context.getToken(function (t) { resolve(t); });
    });
  }

  function call(method, path, body) {
    return token().then(function (t) {
      var init = { method: method, headers: { Authorization: "JWT " + t, Accept: "application/json" } };
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      return fetch(apiBase + path, init).then(function (r) {
        return r.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
          if (!r.ok) {
            var msg = data && data.error && data.error.message ? data.error.message : "Request failed (" + r.status + ").";
            throw new Error(msg);
          }
          return data;
        });
      });
    });
  }

  function say(el, text, bad) {
    if (!el) return;
    el.textContent = text;
    el.className = "notice " + (bad ? "notice-error" : "notice-ok");
    el.hidden = false;
    if (window.AP && window.AP.resize) window.AP.resize();
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el) el.textContent = text == null ? "" : text;
  }

  // ---- Service account --------------------------------------------------------------------------
  var result = document.getElementById("api-token-result");

  function showToken(t) {
    var panel = document.getElementById("api-token-state");
    if (!panel) return;
    panel.hidden = !t;
    if (!t) return;
    setText("token-email", t.email);
    setText("token-account", t.display_name || t.account_id || "");
    setText("token-status", t.status === "ok" ? "Working" : "Failing");
    setText("token-reason", t.status_reason || "");
    setText("token-checked", t.last_checked_at);
    var status = document.getElementById("token-status");
    if (status) status.className = "lozenge " + (t.status === "ok" ? "lozenge-ok" : "lozenge-bad");
    var actions = document.getElementById("api-token-actions");
    if (actions) actions.hidden = false;
  }

  var form = document.getElementById("api-token-form");
  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = { email: form.elements.email.value.trim(), api_token: form.elements.api_token.value.trim() };
      say(result, "Checking the token with Jira…", false);
      call("PUT", "/api/v1/api-token", body).then(function (t) {
        form.elements.api_token.value = "";
        showToken(t);
        say(result, "Saved. Jira accepted the token and the account is a Jira administrator.", false);
      }).catch(function (err) { say(result, err.message, true); });
    });
  }

  var testButton = document.getElementById("api-token-test");
  if (testButton) {
    testButton.addEventListener("click", function () {
      say(result, "Testing…", false);
      call("POST", "/api/v1/api-token/test").then(function (t) {
        showToken(t);
        say(result, t.status === "ok" ? "The token works." : "The token fails: " + (t.status_reason || ""), t.status !== "ok");
      }).catch(function (err) { say(result, err.message, true); });
    });
  }

  var removeButton = document.getElementById("api-token-remove");
  if (removeButton) {
    removeButton.addEventListener("click", function () {
      if (!window.confirm("Remove the service account? Customers will not be able to use the helpdesk until a new token is configured.")) return;
      call("DELETE", "/api/v1/api-token").then(function () {
        showToken(null);
        var actions = document.getElementById("api-token-actions");
        if (actions) actions.hidden = true;
        say(result, "Removed.", false);
      }).catch(function (err) { say(result, err.message, true); });
    });
  }

  // ---- Substitute links -------------------------------------------------------------------------
  function copy(text, button) {
    var done = function () {
      var old = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = old; }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  }

  function fallbackCopy(text) {
    var input = document.createElement("textarea");
    input.value = text;
    document.body.appendChild(input);
    input.select();
    try { document.execCommand("copy"); } catch (e) { /* the link stays selectable */ }
    document.body.removeChild(input);
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("button[data-copy]") : null;
    if (button) copy(button.getAttribute("data-copy"), button);
  });

  function cell(row, text, code) {
    var td = document.createElement("td");
    if (code && text) {
      var c = document.createElement("code");
      c.textContent = text;
      td.appendChild(c);
    } else {
      td.textContent = text || "—";
    }
    row.appendChild(td);
    return td;
  }

  var refresh = document.getElementById("links-refresh");
  var linksResult = document.getElementById("links-result");
  if (refresh) {
    refresh.addEventListener("click", function () {
      say(linksResult, "Asking Jira…", false);
      call("GET", "/api/v1/portals?refresh=1").then(function (links) {
        var body = document.getElementById("links-body");
        while (body.firstChild) body.removeChild(body.firstChild);
        links.forEach(function (l) {
          var row = document.createElement("tr");
          cell(row, l.project_name + " (" + l.project_key + ")");
          cell(row, l.portal_id);
          var link = cell(row, l.substitute_link, true);
          if (l.substitute_link) {
            var b = document.createElement("button");
            b.type = "button";
            b.className = "button-subtle";
            b.setAttribute("data-copy", l.substitute_link);
            b.textContent = "Copy";
            link.appendChild(document.createTextNode(" "));
            link.appendChild(b);
          }
          cell(row, l.native_portal_url, true);
          body.appendChild(row);
        });
        say(linksResult, "Updated: " + links.length + " service desk(s).", false);
      }).catch(function (err) { say(linksResult, err.message, true); });
    });
  }

  if (window.AP && window.AP.resize) window.AP.resize();
})();
