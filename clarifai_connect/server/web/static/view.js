// The web view's only script: colour swatches, and the grid's next pages loaded on scroll.
"use strict";
function paint(root) {
  root.querySelectorAll(".swatch[data-colour]").forEach(function (el) {
    el.style.background = el.dataset.colour;
  });
  root.querySelectorAll(".region-polygon").forEach(function (el) {
    el.style.fill = el.getAttribute("stroke");
  });
}
function loadMore(link, grid, observer) {
  observer.unobserve(link);
  fetch("?" + link.dataset.next, { credentials: "same-origin" })
    .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
    .then(function (html) {
      var holder = document.createElement("template");
      holder.innerHTML = html;  // the server escaped every value; nothing here runs
      link.remove();
      paint(holder.content);
      grid.appendChild(holder.content);
      watch(grid, observer);
    })
    .catch(function () { observer.observe(link); });
}
function watch(grid, observer) {
  var link = grid.querySelector("a.more[data-next]");
  if (link) { observer.observe(link); }
}
document.addEventListener("DOMContentLoaded", function () {
  paint(document);
  var grid = document.getElementById("grid");
  if (!grid || !("IntersectionObserver" in window)) { return; }
  var observer = new IntersectionObserver(function (entries) {
    entries.forEach(function (e) { if (e.isIntersecting) { loadMore(e.target, grid, observer); } });
  }, { rootMargin: "400px" });
  watch(grid, observer);
});
