// Starts GraphiQL against the endpoint that served this page (no CDN, no inline script: the
// page's Content-Security-Policy allows scripts from this origin only).
(function () {
  "use strict";
  var fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      defaultQuery: "# Add `Authorization: Bearer <token>` under Headers below.\n{\n  _service {\n    sdl\n  }\n}\n",
    })
  );
})();
