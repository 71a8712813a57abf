// Streaming endpoints and live tails: read a response body as it arrives (JSON lines or
// text) and append each line to the target element. Plain fetch, no build step.

// The content to show of an HTML answer: a page's <main> (an error page), else its body
// (a fragment). Parsed inertly; assigned as innerHTML, no script in it runs.
function htmlOf(text) {
  const doc = new DOMParser().parseFromString(text, "text/html");
  return (doc.querySelector("main") || doc.body).innerHTML;
}

// A request sent back to the login page: the session is over; log in again, then return here.
function loggedOut(url) {
  if (!url || new URL(url, location.href).pathname !== "/login") return false;
  location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  return true;
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.matches("form[data-stream]")) return;
  event.preventDefault();
  const out = document.querySelector(form.dataset.stream);
  out.textContent = "";
  // a new submit stops the stream the last one into the same target started
  out._stream?.abort();
  const stream = new AbortController();
  out._stream = stream;
  const csrf = document.body.getAttribute("hx-headers");
  const headers = csrf ? JSON.parse(csrf) : {};
  try {
    const response = await fetch(form.action, { method: "POST", body: new FormData(form), headers, signal: stream.signal });
    if (loggedOut(response.url)) return;
    // an HTML answer (an error, at once) is shown as HTML, not as its source
    if ((response.headers.get("content-type") || "").startsWith("text/html")) {
      out.innerHTML = htmlOf(await response.text());
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done || stream.signal.aborted) break;
      out.textContent += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    if (error.name !== "AbortError") throw error;
  }
});

// An answer box shows a refusal too: htmx swaps no 4xx/5xx by default.
document.addEventListener("htmx:beforeSwap", (event) => {
  const { xhr, target } = event.detail;
  if (loggedOut(xhr.responseURL)) {
    event.detail.shouldSwap = false;
    return;
  }
  if (xhr.status < 400 || !target.matches(".answer")) return;
  event.detail.shouldSwap = true;
  event.detail.isError = false;
  event.detail.serverResponse = htmlOf(xhr.responseText);
});

// "Back" links (a javascript: URL would be inline script, which the pages' CSP forbids).
document.addEventListener("click", (event) => {
  if (!event.target.matches("a[data-back]")) return;
  event.preventDefault();
  history.back();
});

// Filter boxes: hide the rows (input[data-filter="<rows selector>"]) not containing the text.
document.addEventListener("input", (event) => {
  const input = event.target;
  if (!input.matches("input[data-filter]")) return;
  const needle = input.value.trim().toLowerCase();
  for (const row of document.querySelectorAll(input.dataset.filter)) {
    row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
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
