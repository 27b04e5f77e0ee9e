// Starts Swagger UI on /docs. A file of its own, not an inline script, so the page's CSP
// can say script-src 'self' and nothing else. Everything it loads comes from this origin.
"use strict";
(function () {
  const root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    deepLinking: true,
    // The default validator badge would send the document to a third party.
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
