// Streaming endpoints and live tails: read a response body as it arrives (JSON lines or
// text) and append each line to the target element. Plain fetch, no build step.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.matches("form[data-stream]")) return;
  event.preventDefault();
  const out = document.querySelector(form.dataset.stream);
  out.textContent = "";
  const csrf = document.body.getAttribute("hx-headers");
  const headers = csrf ? JSON.parse(csrf) : {};
  const response = await fetch(form.action, { method: "POST", body: new FormData(form), headers });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out.textContent += decoder.decode(value, { stream: true });
  }
});

// Live tails (logs, events): an EventSource appending each message to the element.
document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll("[data-tail]")) {
    const source = new EventSource(el.dataset.tail);
    source.onmessage = (event) => {
      el.textContent += event.data + "\n";
      el.scrollTop = el.scrollHeight;
    };
    source.addEventListener("end", () => source.close());
  }
});
