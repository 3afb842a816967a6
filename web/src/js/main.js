// Entry point: the API-key box, then the page's own module (by <body data-page>).
import { apiKey, setApiKey } from "./api.js";
import { status } from "./dom.js";

const form = document.getElementById("key-form");
const input = document.getElementById("api-key");
input.value = apiKey();
form.addEventListener("submit", (event) => {
  event.preventDefault();
  setApiKey(input.value.trim());
  location.reload();
});

const page = document.body.dataset.page;
import(`./pages/${page}.js`)
  .then((module) => module.render(document.getElementById("content")))
  .catch((err) => {
    status(`This page failed: ${err}`, "error");
    document.body.dataset.ready = "1";
  });
