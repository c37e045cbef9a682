import DataLoader from "dataloader";
import { type Database, getSequenceByExternalId, getSequencesByOrdinals, getTokenIdsByOrdinals, listSequences, type Sequence } from "../db/index.js";
import { containsPattern } from "../db/sql.js";
import { requireStorableText } from "../db/validate.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { CorpusRef } from "./corpus.js";
import type { OfIndex } from "./of-index.js";

export const DEFAULT_PAGE_SIZE = 20;

/** A page of sequences named with their index. */
export interface NamedSequencePage {
  edges: { cursor: string; node: OfIndex<Sequence> }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** Training sequences of the index's corpus, as stored in the database, each named with the index it came from. */
export class SequenceService {
  constructor(
    private readonly indexName: string,
    private readonly db: Database,
    private readonly corpus: CorpusRef,
    private readonly tokenizer: Tokenizer,
  ) {}

  /**
   * Sequences by ordinal for one request: all loads of a tick go to the database in one statement,
   * and a sequence loaded once (e.g. for the query log) is not fetched again for the response.
   */
  createLoader(): DataLoader<number, OfIndex<Sequence> | null> {
    return new DataLoader(async (ordinals) => (await getSequencesByOrdinals(this.db, await this.corpus.id(), ordinals)).map((s) => s && this.#named(s)));
  }

  /** Token ids by ordinal for one request, read only when a field asks for them: all loads of a tick in one statement. */
  createTokenLoader(): DataLoader<number, number[] | null> {
    return new DataLoader(async (ordinals) => getTokenIdsByOrdinals(this.db, await this.corpus.id(), ordinals));
  }

  /** A hit's sequence, through the request's loader. */
  async atOrdinal(loader: DataLoader<number, OfIndex<Sequence> | null>, ordinal: number): Promise<OfIndex<Sequence>> {
    return found(await loader.load(ordinal), ordinal);
  }

  /** A stored sequence's token ids, through the request's token loader. */
  async tokenIds(loader: DataLoader<number, number[] | null>, ordinal: number): Promise<number[]> {
    return found(await loader.load(ordinal), ordinal);
  }

  async byExternalId(externalId: string): Promise<OfIndex<Sequence> | null> {
    const sequence = await getSequenceByExternalId(this.db, await this.corpus.id(), externalId);
    return sequence && this.#named(sequence);
  }

  /** One page of the corpus, named with the index (for its nodes' fields and the listing's count). */
  async page(args: { first?: number | null; after?: string | null; search?: string | null }): Promise<OfIndex<NamedSequencePage>> {
    const page = await listSequences(this.db, {
      corpusId: await this.corpus.id(),
      first: args.first ?? DEFAULT_PAGE_SIZE,
      after: args.after,
      search: args.search,
    });
    return { ...page, edges: page.edges.map((edge) => ({ ...edge, node: this.#named(edge.node) })), index: this.indexName };
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

  tokenTexts(tokenIds: readonly number[]): string[] {
    return tokenIds.map((id) => this.tokenizer.tokenText(id));
  }

  #named(sequence: Sequence): OfIndex<Sequence> {
    return { ...sequence, index: this.indexName };
  }
}

/** What a loader found at an ordinal the index returned: the index and the database disagree when it is nothing. */
function found<T>(value: T | null, ordinal: number): T {
  if (value === null)
    throw new Error(`the index has ordinal ${ordinal}, which is not a sequence of its corpus in the database: the index and the database disagree`);
  return value;
}
