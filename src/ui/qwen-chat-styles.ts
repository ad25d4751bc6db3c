// The layout of <qwen-chat>: sidebar, header, message area, composer, panels, banners, and the
// phone layout (a container query). Colours and shared controls are styles.ts.
import { css } from 'lit';

export const chatLayoutStyles = css`
  :host {
    display: block;
    height: var(--qwen-height, 100%);
    min-height: 24rem;
    background: var(--qwen-bg);
    container-type: inline-size;
    position: relative;
  }
  .app {
    display: grid;
    grid-template-columns: 15rem minmax(0, 1fr) auto;
    height: 100%;
  }
  .sidebar {
    display: flex;
    flex-direction: column;
    min-height: 0;
    background: var(--qwen-surface);
    border-right: 1px solid var(--qwen-border);
  }
  .chat {
    display: flex;
    flex-direction: column;
    min-width: 0;
    min-height: 0;
  }
  header {
    display: flex;
    align-items: center;
    gap: 0.5rem;
    padding: 0.5rem 0.75rem;
    border-bottom: 1px solid var(--qwen-border);
    background: var(--qwen-surface);
  }
  .model-status {
    flex: 1;
    min-width: 0;
    overflow: hidden;
    text-overflow: ellipsis;
    white-space: nowrap;
    font-size: 0.875rem;
  }
  .menu,
  .close-sidebar,
  .backdrop {
    display: none;
  }
  qwen-welcome {
    flex: 1;
    min-height: 0;
  }
  qwen-message-list[hidden] {
    display: none;
  }
  .banner {
    display: flex;
    gap: 0.75rem;
    align-items: flex-start;
    margin: 0.5rem 0.75rem 0;
    padding: 0.5rem 0.75rem;
    border-radius: 8px;
    border: 1px solid var(--qwen-border);
    font-size: 0.875rem;
  }
  .banner.error {
    border-color: var(--qwen-danger);
    color: var(--qwen-danger);
  }
  .banner span {
    flex: 1;
    white-space: pre-wrap;
    overflow-wrap: anywhere;
  }
  .progress {
    margin: 0.5rem 0.75rem 0;
    font-size: 0.8rem;
    color: var(--qwen-muted);
  }
  .progress-row {
    display: flex;
    gap: 0.5rem;
    align-items: center;
  }
  progress {
    flex: 1;
    height: 0.5rem;
    accent-color: var(--qwen-accent);
  }
  qwen-message-list {
    flex: 1;
  }
  .panel {
    width: 22rem;
    overflow-y: auto;
    border-left: 1px solid var(--qwen-border);
    background: var(--qwen-surface);
    padding: 0.75rem;
  }
  .panel-head {
    display: flex;
    align-items: center;
    justify-content: space-between;
    margin-bottom: 0.75rem;
  }
  .panel-head h2 {
    font-size: 1rem;
    margin: 0;
  }
  @container (max-width: 760px) {
    .app {
      grid-template-columns: minmax(0, 1fr);
    }
    .menu {
      display: inline-block;
    }
    header {
      flex-wrap: wrap;
    }
    /* The model's name gets a line of its own rather than being cut. */
    .model-status {
      order: 10;
      flex-basis: 100%;
      white-space: normal;
      overflow-wrap: anywhere;
    }
    .sidebar {
      display: none;
    }
    .sidebar.open {
      display: flex;
      position: absolute;
      inset: 0 auto 0 0;
      width: min(18rem, 85%);
      z-index: 4;
      box-shadow: 0 0 24px rgb(0 0 0 / 40%);
    }
    .sidebar.open .close-sidebar {
      display: block;
      align-self: flex-end;
      margin: 0.5rem 0.75rem 0;
      font-size: 1.1rem;
    }
    .backdrop {
      display: block;
      position: absolute;
      inset: 0;
      z-index: 3;
      background: rgb(0 0 0 / 35%);
    }
    .panel {
      position: absolute;
      inset: 0 0 0 auto;
      width: min(24rem, 100%);
      z-index: 3;
    }
  }
`;
