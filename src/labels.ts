/** Label id that does not count in the loss (torch CrossEntropyLoss's default ignore_index): padding of the labels. */
export const IGNORE_INDEX = -100;
