// Interactive API docs: Swagger UI (from the swagger-ui-dist package, served by the API itself,
// so it works offline and under the pages' Content-Security-Policy) over /v1/openapi.json.
// "Authorize" takes a bearer token; each operation lists the roles that may call it.
SwaggerUIBundle({
  url: '/v1/openapi.json',
  dom_id: '#swagger-ui',
  persistAuthorization: true,
  showExtensions: true,
  deepLinking: true,
});
