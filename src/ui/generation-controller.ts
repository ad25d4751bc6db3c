// One streamed answer at a time, as a Lit reactive controller: it pulls chunks from the engine
// (each pull is an await on the worker, so the page keeps handling input between chunks), hands
// every delta over as it arrives (no buffering), and stops through engine.interrupt(), after which
// the stream ends with finish_reason 'abort'. A run counter drops anything a superseded run still
// delivers.
import type { ReactiveController, ReactiveControllerHost } from 'lit';
import { addToolCallDelta } from '../engine/tool-calls.ts';
import type { ChatCompletionRequest, CompletionUsage, Engine, FinishReason, PromptProgress, ToolCall } from '../engine/types.ts';

export interface GenerationDelta {
  content?: string;
  reasoning_content?: string;
}

export interface GenerationResult {
  content: string;
  reasoning: string;
  /** The functions the answer called (finish_reason 'tool_calls'). */
  toolCalls: ToolCall[];
  usage: CompletionUsage | undefined;
  finishReason: FinishReason | null;
}

export class GenerationController implements ReactiveController {
  /** An answer is streaming. */
  running = false;
  /** While the prompt is read (before the first token): how far (engines that report it). */
  promptProgress: PromptProgress | undefined;
  private engine: Engine | undefined;
  private runId = 0;

  constructor(private readonly host: ReactiveControllerHost) {
    host.addController(this);
  }

  hostConnected(): void {}

  /** Moving the element in the page must not stop its answer; the host frees its engine if it stays out. */
  hostDisconnected(): void {}

  /**
   * Streams one answer. `onDelta` sees every delta in order; the result has the whole text, the
   * usage of the last chunk and why it ended. Rejects with the engine's error.
   */
  async generate(
    engine: Engine,
    request: Omit<ChatCompletionRequest, 'stream'>,
    onDelta: (delta: GenerationDelta) => void,
  ): Promise<GenerationResult> {
    if (this.running) throw new Error('an answer is already streaming');
    const runId = ++this.runId;
    this.running = true;
    this.engine = engine;
    this.host.requestUpdate();
    const result: GenerationResult = { content: '', reasoning: '', toolCalls: [], usage: undefined, finishReason: null };
    try {
      const stream = await engine.chat.completions.create({ ...request, stream: true, return_progress: true });
      for await (const chunk of stream) {
        if (runId !== this.runId) break;
        if (chunk.prompt_progress) {
          this.promptProgress = chunk.prompt_progress.processed < chunk.prompt_progress.total ? chunk.prompt_progress : undefined;
          this.host.requestUpdate();
          continue;
        }
        const choice = chunk.choices[0];
        const delta = choice?.delta ?? {};
        if (delta.content) result.content += delta.content;
        if (delta.reasoning_content) result.reasoning += delta.reasoning_content;
        for (const call of delta.tool_calls ?? []) addToolCallDelta(result.toolCalls, call);
        if (delta.content || delta.reasoning_content) onDelta(delta);
        if (choice?.finish_reason) result.finishReason = choice.finish_reason;
        if (chunk.usage) result.usage = chunk.usage;
      }
      return result;
    } finally {
      if (runId === this.runId) {
        this.running = false;
        this.promptProgress = undefined;
        this.engine = undefined;
        this.host.requestUpdate();
      }
    }
  }

  /** Asks the engine to stop the running answer (it ends within a token). */
  stop(): void {
    if (this.running) this.engine?.interrupt();
  }
}
