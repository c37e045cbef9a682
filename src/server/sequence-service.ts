import DataLoader from "dataloader";
import { type Database, getSequenceByExternalId, getSequencesByOrdinals, listSequences, type Sequence, type SequencePage } from "../db/index.js";
import { containsPattern } from "../db/sql.js";
import { requireStorableText } from "../db/validate.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { CorpusRef } from "./corpus.js";

export const DEFAULT_PAGE_SIZE = 20;

/** Training sequences of the index's corpus, as stored in the database. */
export class SequenceService {
  constructor(
    private readonly db: Database,
    private readonly corpus: CorpusRef,
    private readonly tokenizer: Tokenizer,
  ) {}

  /**
   * Sequences by ordinal for one request: all loads of a tick go to the database in one statement,
   * and a sequence loaded once (e.g. for the query log) is not fetched again for the response.
   */
  createLoader(): DataLoader<number, Sequence | null> {
    return new DataLoader(async (ordinals) => getSequencesByOrdinals(this.db, await this.corpus.id(), ordinals));
  }

  /** A hit's sequence, through the request's loader. */
  async atOrdinal(loader: DataLoader<number, Sequence | null>, ordinal: number): Promise<Sequence> {
    const sequence = await loader.load(ordinal);
    if (!sequence)
      throw new Error(`the index has ordinal ${ordinal}, which is not a sequence of its corpus in the database: the index and the database disagree`);
    return sequence;
  }

  async byExternalId(externalId: string): Promise<Sequence | null> {
    return getSequenceByExternalId(this.db, await this.corpus.id(), externalId);
  }

  async page(args: { first?: number | null; after?: string | null; search?: string | null }): Promise<SequencePage> {
    return listSequences(this.db, { corpusId: await this.corpus.id(), first: args.first ?? DEFAULT_PAGE_SIZE, after: args.after, search: args.search });
  }

  /** Sequences whose text contains `search` (as `page` matches it), or all of them. */
  async count(search?: string | null): Promise<number> {
    const corpusId = await this.corpus.id();
    const params: unknown[] = [corpusId];
    let clause = "";
    if (search != null && search !== "") {
      params.push(containsPattern(requireStorableText("search", search)));
      clause = `AND text ILIKE $2 ESCAPE '\\'`;
    }
    const { rows } = await this.db.query<{ n: number }>(`SELECT count(*) AS n FROM sequences WHERE corpus_id = $1 ${clause}`, params);
    return rows[0].n;
  }

  tokenTexts(sequence: Pick<Sequence, "tokenIds">): string[] {
    return sequence.tokenIds.map((id) => this.tokenizer.tokenText(id));
  }
}
