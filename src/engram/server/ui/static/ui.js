// Engram inspector: the only script. Pages work without it; it adds a "select all" box to bulk forms.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll("input[data-select-all]")) {
    const name = box.getAttribute("data-select-all");
    const targets = () => box.form.querySelectorAll(`input[type=checkbox][name="${name}"]`);
    box.hidden = false;
    box.addEventListener("change", () => { for (const target of targets()) target.checked = box.checked; });
  }
});
