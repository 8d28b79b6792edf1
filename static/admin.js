// Resizes the iframe to its content when the page runs inside Jira (AP is Atlassian's all.js).
(function () {
  if (window.AP && typeof window.AP.resize === "function") {
    window.AP.resize();
  }
})();
