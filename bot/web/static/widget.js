// Embeddable widget: <script src="https://HOST/widget.js" defer></script>
// Adds a floating button that opens the same chat in a panel (an iframe on
// the assistant's own origin, so the host page never talks to Rasa).
(function () {
  "use strict";
  if (window.__ordosFertilityWidget) return;
  window.__ordosFertilityWidget = true;
  var script = document.currentScript;
  var origin = new URL(script ? script.src : "/", location.href).origin;
  var open = false, frame = null;
  var button = document.createElement("button");
  button.type = "button";
  button.textContent = "生育政策咨询";
  button.setAttribute("aria-label", "打开生育政策智能助手");
  button.setAttribute("aria-expanded", "false");
  var bs = button.style;
  bs.position = "fixed"; bs.right = "16px"; bs.bottom = "16px"; bs.zIndex = "2147483000";
  bs.background = "#07803f"; bs.color = "#fff"; bs.border = "0"; bs.borderRadius = "24px";
  bs.padding = "12px 18px"; bs.fontSize = "16px"; bs.boxShadow = "0 2px 8px rgba(0,0,0,.3)"; bs.cursor = "pointer";
  bs.fontFamily = '"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif';
  button.addEventListener("click", function () {
    open = !open;
    if (!frame) {
      frame = document.createElement("iframe");
      frame.src = origin + "/?embed=1";
      frame.title = "生育政策智能助手";
      var fs = frame.style;
      fs.position = "fixed"; fs.right = "16px"; fs.bottom = "76px"; fs.zIndex = "2147483000";
      fs.width = "min(400px, calc(100vw - 32px))"; fs.height = "min(640px, calc(100vh - 100px))";
      fs.border = "1px solid #ccc"; fs.borderRadius = "12px"; fs.boxShadow = "0 4px 16px rgba(0,0,0,.3)"; fs.background = "#ededed";
      document.body.appendChild(frame);
    }
    frame.style.display = open ? "block" : "none";
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.textContent = open ? "关闭咨询" : "生育政策咨询";
  });
  document.body.appendChild(button);
})();
