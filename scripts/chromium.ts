/**
 * A small driver for headless Chromium (Debian's `chromium`) over the DevTools protocol: start
 * it, open a page, evaluate an expression in it, take a screenshot, stop it. Used by the status
 * page's browser test and by `scripts/status_screenshot.ts`. Real time runs in the page (no
 * virtual time budget), so a page that polls shows what it would show a person.
 *
 * @module
 */

/** A running headless Chromium. */
export interface Chromium {
  /** Opens `url` in a new tab of `width` x `height`. */
  open(url: string, width?: number, height?: number): Promise<Page>;
  /** Stops the browser and removes its profile. */
  close(): Promise<void>;
}

/** One open tab. */
export interface Page {
  /** Evaluates `expression` in the page (awaiting a promise), returning its value as JSON. */
  evaluate<T>(expression: string): Promise<T>;
  /** A PNG of the viewport (or the whole page with `fullPage`). */
  screenshot(fullPage?: boolean): Promise<Uint8Array>;
}

interface Pending {
  resolve: (value: Record<string, unknown>) => void;
  reject: (error: Error) => void;
}

/**
 * Starts Chromium with the flags it needs here (root, no GPU: see docs/platform-notes.md).
 *
 * @throws {Error} when the browser does not start or does not open its DevTools port
 */
export async function startChromium(binary = "chromium"): Promise<Chromium> {
  const profile = await Deno.makeTempDir({ prefix: "dotbridge-chromium-" });
  const child = new Deno.Command(binary, {
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-extensions",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let seen = "";
  let wsUrl: string | undefined;
  const reader = child.stderr.getReader();
  const deadline = Date.now() + 20_000;
  while (!wsUrl) {
    const timeout = new Promise<null>((r) => setTimeout(() => r(null), 1_000));
    const chunk = await Promise.race([reader.read(), timeout]);
    if (chunk && "done" in chunk) {
      if (chunk.done) break;
      seen += decoder.decode(chunk.value, { stream: true });
      wsUrl = /DevTools listening on (ws:\/\/\S+)/.exec(seen)?.[1];
    }
    if (Date.now() > deadline) break;
  }
  // Keep draining stderr so the browser never blocks on it.
  const draining = (async () => {
    try {
      for (;;) if ((await reader.read()).done) break;
    } catch {
      // Gone.
    }
  })();
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Gone.
    }
    await child.status;
    await draining;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  };
  if (!wsUrl) {
    await stop();
    throw new Error(`chromium: no DevTools port (stderr: ${seen.slice(0, 500)})`);
  }

  const socket = new WebSocket(wsUrl);
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error(`chromium: cannot connect to ${wsUrl}`));
  });
  let nextId = 1;
  const pending = new Map<number, Pending>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data as string);
    const p = message.id !== undefined ? pending.get(message.id) : undefined;
    if (!p) return;
    pending.delete(message.id);
    if (message.error) p.reject(new Error(`chromium: ${message.error.message}`));
    else p.resolve(message.result ?? {});
  };
  const send = (method: string, params: unknown = {}, sessionId?: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, method, params, sessionId }));
    });

  return {
    async open(url, width = 1280, height = 900) {
      const { targetId } = await send("Target.createTarget", { url: "about:blank" });
      const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true }) as {
        sessionId: string;
      };
      await send("Page.enable", {}, sessionId);
      await send("Emulation.setDeviceMetricsOverride", {
        width,
        height,
        deviceScaleFactor: 1,
        mobile: false,
      }, sessionId);
      await send("Page.navigate", { url }, sessionId);
      return {
        async evaluate<T>(expression: string): Promise<T> {
          const result = await send("Runtime.evaluate", {
            expression,
            returnByValue: true,
            awaitPromise: true,
          }, sessionId) as { result: { value: T }; exceptionDetails?: { text: string } };
          if (result.exceptionDetails) {
            throw new Error(`chromium: ${result.exceptionDetails.text}`);
          }
          return result.result.value;
        },
        async screenshot(fullPage = false) {
          const { data } = await send("Page.captureScreenshot", {
            format: "png",
            captureBeyondViewport: fullPage,
          }, sessionId) as { data: string };
          return Uint8Array.fromBase64(data);
        },
      };
    },
    async close() {
      try {
        await Promise.race([
          send("Browser.close"),
          new Promise((r) => setTimeout(r, 2_000)),
        ]);
      } catch {
        // Closing anyway.
      }
      socket.close();
      await stop();
    },
  };
}
