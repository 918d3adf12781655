// purse: starts Swagger UI on /docs or ReDoc on /redoc. It lives in a file of its own,
// not inline in the page, so that those pages keep "script-src 'self'" (see
// purse.web.security). The schema URL comes from the page's data-openapi-url.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const swagger = document.getElementById("swagger-ui");
  if (swagger) {
    window.ui = window.SwaggerUIBundle({
      url: swagger.dataset.openapiUrl,
      domNode: swagger,
      layout: "BaseLayout",
      presets: [window.SwaggerUIBundle.presets.apis],
      deepLinking: true,
      showExtensions: true,
      showCommonExtensions: true,
    });
  }
  const redoc = document.getElementById("redoc");
  if (redoc) {
    window.Redoc.init(redoc.dataset.openapiUrl, {}, redoc);
  }
});
