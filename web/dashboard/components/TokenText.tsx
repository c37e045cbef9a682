import { signOf, tokenBackground } from "../colors.ts";
import { formatScore } from "../format.ts";
import type { TokenScore } from "../queries.ts";

/** Line breaks stay visible as a mark before the break itself. */
const shown = (text: string) => text.replace(/\n/g, "↵\n");

/** A training sequence drawn token by token, each coloured by its influence relative to `reference`. */
export function TokenText({ tokens, reference }: { tokens: TokenScore[]; reference: number }) {
  return (
    <p className="tokens">
      {tokens.map((t) => (
        <span
          key={t.position}
          className="token"
          data-position={t.position}
          data-sign={signOf(t.score)}
          data-score={t.score}
          title={`position ${t.position} · token ${t.tokenId} · influence ${formatScore(t.score)}`}
          style={{ background: tokenBackground(t.score, reference) }}
        >
          {shown(t.text)}
        </span>
      ))}
    </p>
  );
}
